"""The command line: ``python -m mmv_lite [--debug] <command> [options]``.

Each command lives in the module that does the work; that module exposes ``cli_main(argv) -> int`` (or the function
named after a colon, for a module that serves two commands). Every command runs through
:func:`mmv_lite.cli.run_command`: a user error (a bad option or config value, a missing file, an empty split, an
unknown word) ends it with exit status 2 and one line on stderr; ``--debug`` shows the traceback instead.
:mod:`mmv_lite.cli` says which exceptions count as user errors.
"""

from __future__ import annotations

import importlib
import sys

from .cli import DEBUG_FLAG, run_command, split_debug

COMMANDS = {
    "make-samples": ("mmv_lite.data.synth", "generate the sample clips (videos, captions, metadata, word vectors)"),
    "train": ("mmv_lite.train", "pretrain an MMV network (also under torchrun for several GPUs)"),
    "evaluate": ("mmv_lite.evaluate", "retrieval and linear-probe evaluation of a checkpoint"),
    "experiment": ("mmv_lite.experiments", "the paper in miniature: 'findings', 'design' or 'deflation'"),
    "embed": ("mmv_lite.own_videos:embed_main", "features and embeddings of every clip of a folder of your videos"),
    "search": ("mmv_lite.own_videos:search_main", "find the clips of your videos that match words or a sound"),
    "render-notebooks": ("mmv_lite.tools.render_notebooks", "run the notebooks and write them as HTML, for teachers"),
    "bundle": ("mmv_lite.bundle", "write the kit (notebooks, samples, checkpoint) as one zip to upload to Colab"),
}


def entry_point(name: str):
    """The function that runs command ``name``: ``module.cli_main``, or ``module.function`` for "module:function"."""
    module, _, function = COMMANDS[name][0].partition(":")
    return getattr(importlib.import_module(module), function or "cli_main")


def usage() -> str:
    lines = [f"usage: python -m mmv_lite [{DEBUG_FLAG}] <command> [options]", "", "commands:"]
    width = max(map(len, COMMANDS)) + 2
    lines += [f"  {name:<{width}}{help_}" for name, (_, help_) in COMMANDS.items()]
    lines += [
        "",
        "python -m mmv_lite <command> --help shows a command's options.",
        f"An error in what you gave prints one line and exits with status 2; {DEBUG_FLAG} shows the traceback.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv, debug = split_debug(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return run_command(entry_point(name), rest, debug)


if __name__ == "__main__":
    sys.exit(main())
