"""The command-line dispatcher."""

import subprocess
import sys

from mmv_lite.__main__ import COMMANDS, entry_point, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_an_error(capsys):
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err


def test_every_command_has_an_entry_point():
    for name in COMMANDS:
        assert callable(entry_point(name)), name


def test_python_dash_m_runs():
    r = subprocess.run([sys.executable, "-m", "mmv_lite", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "make-samples" in r.stdout
