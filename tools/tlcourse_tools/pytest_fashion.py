"""pytest plugin: when Fashion-MNIST is not installed, the tests and notebook cells that fail for that
reason are reported as skipped (with the fix), the rest of such a notebook is skipped, and one line
sums it up. Loaded by the root ``conftest.py``; see :mod:`tlcourse_tools.fashion`."""

from __future__ import annotations

import pytest

from tlcourse_tools.fashion import FIX, MISSING, SKIP_REASON

_missing_in: set[str] = set()  # notebooks (nbval parents) whose data turned out to be missing


def _files_missing() -> bool:
    try:
        from tlcourse import data
    except ImportError:
        return False
    return not any(row["name"] == "fashion_mnist" for row in data.cached_datasets())


def pytest_runtest_setup(item):
    if item.parent is not None and item.parent.nodeid in _missing_in:
        pytest.skip(SKIP_REASON)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and any(text in str(report.longrepr) for text in MISSING) and _files_missing():
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {SKIP_REASON}")
        if item.path.suffix == ".ipynb" and item.parent is not None:
            _missing_in.add(item.parent.nodeid)  # the notebook's later cells depend on this one


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if SKIP_REASON in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"⚠️  {len(skipped)} tests skipped: Fashion-MNIST is not installed. Fix: {FIX}."
        )
