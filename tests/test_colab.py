"""Colab readiness: every notebook opens in Colab from its own path and installs tlcourse there only."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p for folder in ("notebooks", "exercises", "solutions") for p in (ROOT / folder).glob("*.ipynb")
)
BADGE = re.compile(
    r"https://colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/(\w+)/([\w/.-]+\.ipynb)"
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_badge_points_at_this_notebook_and_install_cell_only_acts_on_colab(path):
    from tlcourse_tools.authoring import REPO_URL

    cells = json.loads(path.read_text())["cells"]
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown"
    match = BADGE.search(first)
    assert match, f"{path.name}: no Open-in-Colab badge in the first cell"
    repo, branch, nb_path = match.groups()
    assert f"https://github.com/{repo}" == REPO_URL
    assert branch == "main"
    assert nb_path == path.relative_to(ROOT).as_posix()
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    install = code[0]
    assert 'if "google.colab" in sys.modules' in install and "pip" in install
    assert f"git+{REPO_URL}" in install
    setup = next(i for i, c in enumerate(code) if "tlcourse.setup(" in c)
    assert setup <= 2, "setup() comes right after the install and parameters cells"


def test_there_are_notebooks_to_check():
    assert NOTEBOOKS
