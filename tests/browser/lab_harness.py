"""JupyterLab in headless Chromium, driven like a student would: start a server, open a notebook, Run All Cells,
then read and poke the widgets. The fixtures in ``conftest.py`` use this; tests import the helpers from here.

Chromium comes from Debian's ``chromium`` package (``.ci/install-browser.sh``); ``MMV_CHROMIUM`` names another
binary. Screenshots, the server log and the browser console go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("MMV_CHROMIUM", "/usr/bin/chromium")
# Flags for a container without a display, GPU or network; the sandbox needs user namespaces we may not have.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SERVER_START_TIMEOUT_S = 60
SERVER_START_TRIES = 3
# JupyterLab user settings for the test server: no news/update pop-ups over the notebook, and every cell
# kept in the DOM (the "full" windowing mode detaches cells scrolled out of view).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
PY_KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"Python package 'playwright' is not importable ({exc}); run `pip install -r requirements.txt`"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (
            f"no Chromium executable at {CHROMIUM} (MMV_CHROMIUM); install it with `.ci/install-browser.sh` "
            "(apt-get install chromium)"
        )
    if shutil.which("jupyter") is None:
        return "the `jupyter` command is not on PATH; run `pip install -r requirements.txt`"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _proc_table() -> dict[int, tuple[int, str]]:
    """``{pid: (parent pid, start time)}`` from Linux /proc (empty elsewhere)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            table[int(stat.parent.name)] = (int(fields[1]), fields[19])  # ppid, starttime (fields 4 and 22)
        except (OSError, IndexError, ValueError):
            continue
    return table


def _descendants(pid: int) -> set[tuple[int, str]]:
    """``(pid, start time)`` of every process below ``pid``. Kernels run in their own sessions, so the server's
    process group does not cover them; the start time keeps a reused pid from being mistaken for one of them."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(p)
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add((c, table[c][1]))
            todo.append(c)
    return out


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (the server shuts its kernels down), then SIGKILL whatever of the
    server and its descendants is still alive."""
    if proc.poll() is not None:
        return
    below = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)
    alive = _proc_table()
    for pid, started in below:
        if alive.get(pid, (None, None))[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@dataclass
class LabServer:
    url: str  # e.g. http://127.0.0.1:8890
    root: Path  # the server's root folder; notebooks are copied into root / "notebooks"
    log: Path

    def add_notebook(self, src: Path, name: str | None = None) -> str:
        """Copy the notebook ``src`` into the server's ``notebooks/`` folder; return its name there.

        A copy without kernelspec metadata (jupytext may strip it) gets the python3 kernel, so JupyterLab
        starts it instead of asking which kernel to use.
        """
        import nbformat

        nb = nbformat.read(src, as_version=4)
        nb.metadata.setdefault("kernelspec", PY_KERNELSPEC)
        name = name or src.name
        nbformat.write(nb, self.root / "notebooks" / name)
        return name

    def shut_down_kernels(self, timeout_s: float = 30) -> None:
        """End every session and kernel of the server (its REST API), and wait until none is left."""
        for kind in ("sessions", "kernels"):
            for item in _get_json(f"{self.url}/api/{kind}"):
                urllib.request.urlopen(urllib.request.Request(f"{self.url}/api/{kind}/{item['id']}", method="DELETE"))
        deadline = time.monotonic() + timeout_s
        while _get_json(f"{self.url}/api/kernels"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"JupyterLab still runs kernels {timeout_s:.0f} s after they were shut down")
            time.sleep(0.2)


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def start_server(root: Path, log: Path) -> tuple[subprocess.Popen, str]:
    settings = root / ".lab" / "settings"
    for rel, value in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    env = dict(os.environ)
    env.setdefault("MMV_LITE_MODE", "quick")  # the kernels inherit it: notebooks run their quick path
    env["JUPYTER_RUNTIME_DIR"] = str(root / ".lab" / "runtime")
    env["PYTHONUNBUFFERED"] = "1"
    errors = []
    for _ in range(SERVER_START_TRIES):
        port = _free_port()
        cmd = [
            sys.executable, "-m", "jupyter", "lab",
            "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
            "--ServerApp.port_retries=0",  # fail on a clash instead of moving to a port we do not know
            "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={root / '.lab' / 'workspaces'}",
        ]  # fmt: skip
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                cmd, cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        return proc, url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        stop(proc)
        errors.append(f"port {port}: exit code {proc.returncode}")
    raise RuntimeError(
        f"JupyterLab did not answer on /api/status within {SERVER_START_TIMEOUT_S} s after "
        f"{SERVER_START_TRIES} tries ({'; '.join(errors)}). Server log {log}:\n{_tail(log)}"
    )


def screenshot(page, name: str, target=None) -> Path:
    """Screenshot of the JupyterLab window to ``test-artifacts/browser/<name>.png``, after scrolling ``target``
    (a locator, e.g. a widget) into view: the notebook scrolls inside the window, so a full-page shot would not."""
    if target is not None:
        target.scroll_into_view_if_needed(timeout=10_000)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), timeout=30_000)
    return path


def open_notebook(page, lab: LabServer, name: str, timeout_s: float = 90) -> None:
    """Open ``notebooks/<name>`` in JupyterLab, alone in a fresh workspace, and wait until its kernel is idle.

    A workspace of its own (``?reset``) matters: JupyterLab otherwise restores the tabs of the notebooks opened
    before, and menu commands may then go to one of those.
    """
    workspace = re.sub(r"[^\w-]+", "-", name)
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/notebooks/{name}?reset", timeout=timeout_s * 1000)
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").first.wait_for(
        state="visible", timeout=timeout_s * 1000
    )
    wait_kernel_idle(page, timeout_s)


def wait_kernel_idle(page, timeout_s: float) -> None:
    """Wait until the notebook has a kernel (not "No Kernel") and the status bar reads "| Idle".

    The toolbar's execution indicator alone is not enough: it reads idle before any kernel is attached, and
    running cells then would open the "Select Kernel" dialog.
    """
    page.wait_for_function(
        """() => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            const name = panel && panel.querySelector('.jp-Toolbar-kernelName');
            if (!name || /No Kernel/.test(name.getAttribute('aria-label') || name.textContent)) return false;
            const status = [...document.querySelectorAll('.jp-StatusBar-TextItem')].map(e => e.textContent);
            return status.some(t => /\\|\\s*Idle\\s*$/.test(t));
        }""",
        timeout=timeout_s * 1000,
        polling=250,
    )


def run_all_cells(page, timeout_s: float) -> None:
    """Run > Run All Cells from the menu bar, as a student would, and wait until the run is over.

    The run is over when no cell is queued ("[*]:") and the kernel is idle. JupyterLab stops at the first
    cell that raises and leaves the cells after it unrun ("[ ]:"); that is reported with the failing cell's
    output. (Error outputs and stderr text share one DOM form, so the unrun cells are the reliable sign.)
    """
    prompts = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt"
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell")
    # Focus the notebook (menu commands act on the focused document), then Run > Run All Cells.
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-InputPrompt").first.click()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    try:  # the first code cell is queued ("[*]") at once; if not, the menu command went nowhere
        page.wait_for_function(
            "(sel) => { const p = document.querySelector(sel); return p && !/\\[ \\]/.test(p.textContent); }",
            arg=prompts,
            timeout=30_000,
        )
    except Exception as exc:
        if type(exc).__name__ != "TimeoutError":
            raise
        raise AssertionError("Run > Run All Cells did not start the notebook's first code cell within 30 s") from None
    try:
        page.wait_for_function(
            """(sel) => {
                const p = [...document.querySelectorAll(sel)].map(e => e.textContent);
                return p.length > 0 && /\\[\\d+\\]/.test(p[0]) && !p.some(t => t.includes('*'));
            }""",
            arg=prompts,
            timeout=timeout_s * 1000,
            polling=500,
        )
    except Exception as exc:
        if type(exc).__name__ != "TimeoutError":
            raise
        texts = page.locator(prompts).all_inner_texts()
        done = sum(bool(re.search(r"\[\d+\]", t)) for t in texts)
        busy = next((i for i, t in enumerate(texts) if "*" in t), None)
        where = ""
        if busy is not None:
            head = cells.nth(busy).locator(".jp-InputArea-editor").inner_text()[:300]
            where = f" Code cell {busy + 1} was still running:\n{head}"
        raise AssertionError(
            f"Run All Cells did not finish within {timeout_s:.0f} s: {done} of {len(texts)} code cells done.{where}"
        ) from None
    wait_kernel_idle(page, timeout_s)
    texts = page.locator(prompts).all_inner_texts()
    sources = cells.locator(".jp-InputArea-editor").all_inner_texts()
    # An empty code cell is never executed, so it keeps "[ ]:" without meaning that the run stopped.
    unrun = [i for i, (t, src) in enumerate(zip(texts, sources)) if src.strip() and not re.search(r"\[\d+\]", t)]
    if unrun:
        ran = [i for i in range(unrun[0]) if re.search(r"\[\d+\]", texts[i])]
        failed = cells.nth(ran[-1] if ran else 0)
        raise AssertionError(
            f"Run All Cells stopped: code cell {(ran[-1] if ran else 0) + 1} of {len(texts)} raised.\n"
            f"Cell source:\n{failed.locator('.jp-InputArea-editor').inner_text()[:1500]}\n"
            f"Its output:\n{failed.locator('.jp-OutputArea').inner_text()[-3000:]}"
        )


def output_signature(locator) -> dict:
    """What an output area shows: its text and a short fingerprint of each image (``src`` length and tail),
    so a redrawn figure counts as a change even when the text around it does not."""
    return locator.evaluate(
        """(el) => ({
            text: el.innerText,
            images: [...el.querySelectorAll('img')].map(i => `${i.src.length}:${i.src.slice(-48)}`),
            loaded: [...el.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0),
        })"""
    )


def wait_signature_change(locator, before: dict, timeout_s: float, settle_s: float = 1.0) -> dict:
    """Poll ``output_signature(locator)`` until it differs from ``before``, shows something, has its images
    decoded, and has settled: the kernel is idle and nothing changed for ``settle_s`` (an app redraws its output
    piece by piece, so the first change is not the end). Return the settled signature."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while True:
        now = output_signature(locator)
        if now != last:
            last, since = now, time.monotonic()
        changed = now != before and now["loaded"] and (now["text"].strip() or now["images"])
        if changed and time.monotonic() - since >= settle_s and _kernel_idle(locator.page):
            return now
        if time.monotonic() > deadline:
            state = "changed but did not settle" if changed else "did not change"
            raise AssertionError(f"the output {state} within {timeout_s} s; it shows:\n{now}")
        time.sleep(0.25)


def _kernel_idle(page) -> bool:
    status = page.locator(".jp-StatusBar-TextItem").all_inner_texts()
    return any(re.search(r"\|\s*Idle\s*$", t) for t in status)
