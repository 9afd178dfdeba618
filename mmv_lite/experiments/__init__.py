"""The experiments: the paper's findings and design tables in miniature (``python -m mmv_lite experiment``)."""

from . import findings, tables  # noqa: F401
from .cli import *  # noqa: F403
from .cli import EvalData, cli_main, run_one, runs_of  # noqa: F401
