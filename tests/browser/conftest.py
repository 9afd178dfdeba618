"""Fixtures for the browser tests: a JupyterLab server in a temp folder (nothing is written into the repository)
and a fresh headless Chromium tab per test. The helpers live in ``lab_harness.py``.

Without a usable browser every test here is skipped with the reason, or fails when ``MMV_REQUIRE_BROWSER=1``
(for CI machines that must run them).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from lab_harness import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    LabServer,
    browser_unavailable_reason,
    screenshot,
    start_server,
    stop,
)


@pytest.hookimpl(tryfirst=True)  # before tests/conftest.py reads which tests will run (RUN_BY_A_TEST)
def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    reason = browser_unavailable_reason()
    skip_browser = reason is not None and os.environ.get("MMV_REQUIRE_BROWSER") != "1"
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.browser)
        if skip_browser:
            item.add_marker(pytest.mark.skip(reason=f"browser test skipped: {reason}"))
        # With MMV_REQUIRE_BROWSER=1 the fixtures below fail with the same reason instead.


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so ``page`` can screenshot a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _fail_without_browser() -> None:
    reason = browser_unavailable_reason()
    if reason is not None:  # only reached with MMV_REQUIRE_BROWSER=1; otherwise the tests were skipped
        pytest.fail(f"MMV_REQUIRE_BROWSER=1 but {reason}", pytrace=False)


_artifacts_cleared = False


@pytest.fixture
def jupyter_lab(lab_server):
    """The session's JupyterLab server; the kernels a test started are shut down when it ends (none is left
    running while later tests, e.g. nbmake's notebooks, start kernels of their own)."""
    yield lab_server
    lab_server.shut_down_kernels()


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """A JupyterLab server rooted in a temp folder (``root/notebooks`` for notebooks, ``root/data_samples``
    linked to the repository's samples, so notebooks that look in ``../data_samples`` find them). One per session
    (per pytest-xdist worker): it starts in about 7 s of CPU time."""
    _fail_without_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    global _artifacts_cleared
    # The artifacts folder is cleared once per session.
    stale_files = [p for pattern in ("*.png", "*.txt", "*.log") for p in ARTIFACTS.glob(pattern)]
    for stale in [] if _artifacts_cleared else stale_files:
        stale.unlink()  # so the folder shows this run only
    _artifacts_cleared = True
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    if (REPO / "data_samples").is_dir():
        (root / "data_samples").symlink_to(REPO / "data_samples", target_is_directory=True)
    log = root / "jupyter-lab.log"
    proc, url = start_server(root, log)
    try:
        yield LabServer(url=url, root=root, log=log)
    finally:
        stop(proc)
        shutil.copyfile(log, ARTIFACTS / "jupyter-lab.log")


@pytest.fixture(scope="session")
def browser():
    _fail_without_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, request):
    """A fresh tab (1400x1000); its console errors and page errors are saved next to the screenshots."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    p = context.new_page()
    console: list[str] = []
    p.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    p.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
    try:
        yield p
    finally:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            try:
                screenshot(p, f"{name}.FAILED")
            except Exception as exc:  # a crashed page must not hide the test's own failure
                console.append(f"[screenshot failed] {exc}")
        (ARTIFACTS / f"{name}.console.txt").write_text("\n".join(console) + "\n")
        context.close()
