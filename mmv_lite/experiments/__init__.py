"""The experiments: the paper's findings and design tables in miniature, from one harness.

- :mod:`~mmv_lite.experiments.arms`: the arms (a name and the config overrides that make it; the random
  initialisation and the supervised reference too) and the cache key of a run;
- :mod:`~mmv_lite.experiments.budget`: the one :class:`Budget` (:data:`FULL`, :data:`QUICK`);
- :mod:`~mmv_lite.experiments.sources`: where arms train and are measured (the sample world, a folder of clips);
- :mod:`~mmv_lite.experiments.supervised`: the supervised reference's training;
- :mod:`~mmv_lite.experiments.measure`: one network's flat metrics, through :func:`mmv_lite.evaluate.evaluate_model`;
- :mod:`~mmv_lite.experiments.runs`: one arm trained, measured and cached; many at once in a process pool;
- :mod:`~mmv_lite.experiments.findings`: the six findings as checks over arms, their conditions, findings.json;
- :mod:`~mmv_lite.experiments.tables`: the design tables (Tables 1a, 1b, 3) as views over runs of the arms;
- :mod:`~mmv_lite.experiments.cli`: ``python -m mmv_lite experiment findings|design|deflation``.
"""

from . import findings, tables
from .arms import ARMS, RANDOM_INIT, SUPERVISED, arm_config, run_key
from .budget import FULL, QUICK, Budget
from .cli import cli_main
from .measure import flat_metrics, measure
from .runs import run_arm, run_arms
from .sources import ClipFolder, World, make_source
from .tables import EXPERIMENTS, TABLES, load_tables, row_differences, run_experiment, runs_of

__all__ = [
    "ARMS",
    "EXPERIMENTS",
    "FULL",
    "QUICK",
    "RANDOM_INIT",
    "SUPERVISED",
    "TABLES",
    "Budget",
    "ClipFolder",
    "World",
    "arm_config",
    "cli_main",
    "findings",
    "flat_metrics",
    "load_tables",
    "make_source",
    "measure",
    "row_differences",
    "run_arm",
    "run_arms",
    "run_experiment",
    "run_key",
    "runs_of",
    "tables",
]
