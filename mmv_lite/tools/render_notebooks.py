"""Render the course for reading and projecting: run every notebook and write it as HTML with its outputs.

    python -m mmv_lite render-notebooks --out DIR [--mode quick|full] [--only NN ...] [--timeout SECONDS]

Each notebook runs top to bottom in its own kernel, from the ``notebooks/`` folder (as the tests run it), with the
exercises' solutions in place (``MMV_LITE_SOLUTIONS=1``, see :mod:`mmv_lite.exercises`) and in the run mode asked
for (``MMV_LITE_MODE``; without ``--mode``, the notebooks' own default: full on a GPU, quick otherwise). The HTML
(nbconvert's JupyterLab template) carries every output, figures embedded as images, so the folder can be read
offline, copied, or projected; ``DIR/index.html`` lists the notebooks with how long each took, and
``DIR/timings.json`` how long each section took (what docs/TEACHING.md plans with). A notebook that fails
is still written, up to and including the failing cell and its error; the command then exits with status 1.
The rendered files are for the teacher's folder, not for the repository.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mmv_lite.cli import check_at_least
from mmv_lite.colab import MODE_ENV, SOLUTIONS_ENV, run_mode
from mmv_lite.files import atomic_write
from mmv_lite.runtime import machine

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass
class Rendered:
    notebook: str  # file name, e.g. "02_losses.ipynb"
    html: Path
    seconds: float
    error: str | None = None  # the first line of the error, when a cell failed
    sections: list[dict] = field(default_factory=list)  # {"section", "seconds"} in order (:func:`section_timings`)


def _cell_seconds(cell) -> float:
    """How long a code cell ran, from the timestamps nbclient records (0 when it did not run)."""
    ex = cell.get("metadata", {}).get("execution", {})
    start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def section_timings(nb) -> list[dict]:
    """Seconds of code per section of an executed notebook; a section starts at a markdown ``## `` or ``### ``
    heading (the set-up and parameters before the first one are ``"set-up"``)."""
    out = [{"section": "set-up", "seconds": 0.0}]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heads = [
                line[3:].strip("# ").strip() for line in cell.source.splitlines() if line.startswith(("## ", "### "))
            ]
            if heads:
                out.append({"section": heads[0], "seconds": 0.0})
        elif cell.cell_type == "code":
            out[-1]["seconds"] += _cell_seconds(cell)
    return [{"section": s["section"], "seconds": round(s["seconds"], 1)} for s in out]


def select(only: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """The notebooks of ``folder`` (``NN_topic.ipynb``, in order); ``only``: those whose name starts with one of these
    prefixes (``"02"``, ``"02_losses"``)."""
    found = sorted(folder.glob("[0-9]*.ipynb"))
    if not only:
        return found
    chosen = [nb for nb in found if any(nb.stem.startswith(p.removesuffix(".ipynb")) for p in only)]
    unknown = [p for p in only if not any(nb.stem.startswith(p.removesuffix(".ipynb")) for nb in found)]
    if unknown:
        raise ValueError(
            f"--only: no notebook in {folder} starts with {', '.join(map(repr, unknown))}; "
            f"the notebooks are {', '.join(nb.stem for nb in found)}"
        )
    return chosen


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def render_notebook(path: Path, out: Path, timeout: int | None = 600, env: dict[str, str] | None = None) -> Rendered:
    """Execute ``path`` in a fresh kernel (working directory: its folder; environment: ``env``, default this
    process's) and write ``out/<name>.html``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start, error = time.perf_counter(), None
    try:
        client.execute(env=dict(os.environ) if env is None else env)
    except CellExecutionError as e:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # without the traceback's terminal colours
        error = text.splitlines()[-1] if text else type(e).__name__
    except Exception as e:  # a timeout or a dead kernel: keep what ran, say what happened
        error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - start
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": _title(nb) or path.stem}})
    target = out / f"{path.stem}.html"
    target.write_text(body, encoding="utf-8")
    return Rendered(path.name, target, seconds, error, section_timings(nb))


def write_index(results: list[Rendered], out: Path, mode: str) -> Path:
    rows = []
    for r in results:
        status = "ok" if r.error is None else f"failed: {html.escape(r.error)}"
        rows.append(
            f"<tr><td><a href='{html.escape(r.html.name)}'>{html.escape(r.notebook)}</a></td>"
            f"<td>{r.seconds:.1f} s</td><td>{status}</td></tr>"
        )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mmv_lite course</title></head><body>"
        "<h1>mmv_lite: the course, rendered</h1>"
        f"<p>Mode: {html.escape(mode)}; exercises shown with their solutions.</p>"
        "<table><tr><th>notebook</th><th>run time</th><th>status</th></tr>" + "".join(rows) + "</table></body></html>"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def render(
    out: str | os.PathLike,
    mode: str | None = None,
    only: list[str] | None = None,
    folder: Path = NOTEBOOKS,
    timeout: int | None = 600,
    say=print,
) -> list[Rendered]:
    """Render the chosen notebooks into ``out`` (created if needed); returns one :class:`Rendered` per notebook."""
    notebooks = select(only, folder)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # The kernels get this process's environment with the settings of the notebook tests (notebooks/conftest.py).
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, SOLUTIONS_ENV: "1"}
    if mode is not None:
        env[MODE_ENV] = mode
    mode = mode or run_mode()
    results = []
    for path in notebooks:
        say(f"running {path.name} ({mode} mode) ...")
        r = render_notebook(path, out, timeout, env)
        say(f"  {r.html}  {r.seconds:.1f} s" + (f"  FAILED: {r.error}" if r.error else ""))
        results.append(r)
    say(f"index: {write_index(results, out, mode)}")
    timings = {
        "mode": mode,
        "command": "python -m mmv_lite render-notebooks --out DIR --mode " + mode,
        "total_seconds": round(sum(r.seconds for r in results), 1),
        "machine": machine(),
        "notebooks": {Path(r.notebook).stem: {"seconds": round(r.seconds, 1), "sections": r.sections} for r in results},
    }
    (out / "timings.json").write_text(json.dumps(timings, indent=2))
    return results


TIMINGS_ENV = "MMV_LAB_TIMINGS"  # a JSON file: the notebook tests record their times there when it is set
TIMINGS_COMMAND = (
    "MMV_LAB_TIMINGS=docs/results/lab_timings.json python -m pytest --nbmake notebooks "
    "tests/browser/test_notebooks_in_lab.py -p no:cacheprovider"
)


def record_timings(path: str | os.PathLike, key: str, seconds: dict[str, float], how: str) -> None:
    """Add ``{notebook: seconds}`` under ``key`` to the timings file ``path`` (kept: what other keys hold).

    The notebook tests call it: ``key="nbmake"`` for each notebook run by nbmake (notebooks/conftest.py) and
    ``key="lab"`` for Run > Run All Cells in JupyterLab, as a student runs it (tests/browser), in one pytest run."""
    path = Path(path)
    doc = json.loads(path.read_text()) if path.is_file() else {}
    doc.update(command=TIMINGS_COMMAND, machine=machine(), mode=run_mode())
    doc[key] = {"how": how, "seconds": {k: round(v, 1) for k, v in sorted(seconds.items())}}
    doc[key]["total_seconds"] = round(sum(seconds.values()), 1)
    atomic_write(path, json.dumps(doc, indent=2) + "\n")


def cli_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mmv_lite render-notebooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, type=Path, help="folder for the HTML files (created if needed)")
    p.add_argument("--mode", choices=("quick", "full"), help="run mode (default: full on a GPU, quick otherwise)")
    p.add_argument("--only", nargs="+", metavar="NN", help="only these notebooks, by number or name: --only 02 05")
    p.add_argument("--timeout", type=int, default=600, help="seconds a single cell may run (default 600)")
    args = p.parse_args(argv)
    check_at_least(args, timeout=1)
    try:
        import nbclient  # noqa: F401
        import nbconvert  # noqa: F401
    except ImportError:
        print("render-notebooks needs nbconvert and nbclient: pip install -r requirements.txt", file=sys.stderr)
        return 2
    results = render(args.out, args.mode, args.only, timeout=args.timeout)
    failed = [r.notebook for r in results if r.error]
    if failed:
        print(f"{len(failed)} of {len(results)} notebooks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli_main())
