"""What the commands share: which errors are the user's, the one line such an error prints, and option checks.

``python -m mmv_lite <command>`` runs a command through :func:`run_command`. An exception that means "what you gave
cannot be used" ends the command with exit status 2 and one line on stderr, ``error: <message>``, without a
traceback; ``python -m mmv_lite --debug <command> ...`` (``--debug`` may also come after the command) shows it.

Which exceptions are user errors (:data:`USER_ERRORS`):

- ``ValueError``: a value that cannot work: an option, a config field (``--set``, :func:`mmv_lite.config.validate`),
  an unknown split or word, a checkpoint that is not one (``CheckpointError`` is a ``ValueError``);
- ``OSError``: a file or folder that is missing, unreadable or not writable, a full disk;
- ``BadClipError``: a media, caption or metadata file that cannot be used;
- PyAV's ``FFmpegError``: a media file FFmpeg cannot read.

Everything else (``TypeError``, ``KeyError``, ``IndexError``, ``AttributeError``, ``RuntimeError``,
``AssertionError``, ...) is a bug until shown otherwise: it keeps its traceback. And so that a bug that happens to
raise a ``ValueError`` deep inside torch or numpy is not mistaken for a message written for the user, such a line
also names the exception and the module that raised it:
``error: <message> [ValueError in torch.optim.adam; --debug shows the traceback]`` (an ``OSError`` names its file
and needs no more).

argparse's own usage errors (an unknown option, a missing argument, a value of the wrong type) keep argparse's
form: the usage line, the error, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .data.media import BadClipError

PACKAGE = __name__.rpartition(".")[0]
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, BadClipError)
DEBUG_FLAG = "--debug"


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is about what the user gave (see the module docstring), not a bug."""
    if isinstance(error, USER_ERRORS):
        return True
    av = sys.modules.get("av")  # PyAV is loaded whenever one of its errors can exist
    ffmpeg_error = getattr(getattr(av, "error", None), "FFmpegError", None)
    return ffmpeg_error is not None and isinstance(error, ffmpeg_error)


def raised_in(error: BaseException) -> str:
    """The module whose code raised ``error`` (the innermost frame of its traceback; "" without one)."""
    tb = error.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", ""))


def error_line(error: BaseException) -> str:
    """The one line a user error prints: ``error: <message>``, plus where it came from when not from this package."""
    message = " ".join(str(error).split()) or type(error).__name__
    where = "" if isinstance(error, OSError) else raised_in(error)  # an OSError names its file: that is enough
    if where and where != PACKAGE and not where.startswith(PACKAGE + "."):
        message += f" [{type(error).__name__} in {where}; {DEBUG_FLAG} shows the traceback]"
    return f"error: {message}"


def split_debug(argv: Sequence[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (anywhere before a ``--``), and whether it was there."""
    argv = list(argv)
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a != DEBUG_FLAG] + argv[end:]
    return kept, len(kept) != len(argv)


def run_command(command: Callable[[list[str]], Any], argv: Sequence[str], debug: bool = False) -> int:
    """Run ``command(argv)``; a user error becomes one line on stderr and exit status 2 (``debug``: the traceback).

    Ctrl-C outside training (which saves and stops by itself) ends with status 130 and the line ``interrupted``.
    """
    try:
        return int(command(list(argv)) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug or not is_user_error(e):
            raise
        print(error_line(e), file=sys.stderr)
        return 2


def check_at_least(args: argparse.Namespace, **minimums: int | float) -> None:
    """Raise ``ValueError`` naming the option when a numeric option is below its minimum (``None`` is not set).

    >>> check_at_least(argparse.Namespace(batch_size=0), batch_size=1)
    Traceback (most recent call last):
    ...
    ValueError: --batch-size 0: expected a number >= 1
    """
    for name, least in minimums.items():
        value = getattr(args, name)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and v < least:
                raise ValueError(f"--{name.replace('_', '-')} {v}: expected a number >= {least}")
