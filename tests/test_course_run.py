"""The headless course run (`tlcourse run`, `make course`): parameters cells, injection, outputs, exit codes."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import jupytext
import nbformat
import pytest
from tlcourse_tools import authoring, running

from tlcourse import cli
from tlcourse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LESSON_SOURCES = sorted((ROOT / "sources" / "notebooks").glob(authoring.SOURCE_GLOB))


def _tiny_notebook(path: Path, cells: list[str], *, parameters: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(authoring.KERNELSPEC)
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem} title")]
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    nbformat.write(nb, str(path))
    return path


def _boom(tmp_path: Path) -> Path:
    return _tiny_notebook(
        tmp_path / "boom.ipynb",
        ["x = 1", "raise ValueError('bad value\\n  hint: a second line')", "print('after the error')"],
        parameters="N = 1",
    )


# --------------------------------------------------------------------------- the lessons' parameters cells
def _parameters_cells(nb) -> list[int]:
    return [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])
    ]


@pytest.mark.parametrize("source", LESSON_SOURCES, ids=lambda p: p.stem)
def test_lesson_has_one_literal_parameters_cell_before_setup(source):
    built = nbformat.read(str(ROOT / "notebooks" / f"{source.stem}.ipynb"), as_version=4)
    authored = jupytext.reads(source.read_text(encoding="utf-8"), fmt="py:percent")
    for nb, what in ((authored, source.name), (built, f"notebooks/{source.stem}.ipynb")):
        found = _parameters_cells(nb)
        assert len(found) == 1, f"{what}: {len(found)} cells tagged parameters, expected 1"
        index = found[0]
        setup = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "tlcourse.setup(" in c.source]
        assert setup and index < setup[0], f"{what}: the parameters cell must come before tlcourse.setup(...)"
        names = {}
        for node in ast.parse(nb.cells[index].source).body:
            assert isinstance(node, ast.Assign) and len(node.targets) == 1, (
                f"{what}: the parameters cell holds only `NAME = literal` lines, not {ast.unparse(node)!r}"
            )
            assert isinstance(node.targets[0], ast.Name), (
                f"{what}: {ast.unparse(node)!r} assigns no plain name"
            )
            names[node.targets[0].id] = ast.literal_eval(node.value)  # raises for anything but a literal
        assert "PROFILE" in names and names["PROFILE"] is None, f"{what}: PROFILE = None is missing"
        assert running.parameter_names(nb) == list(names)


# --------------------------------------------------------------------------- -p NAME=VALUE
def test_parse_parameters_reads_literals_and_falls_back_to_text():
    items = ["EPOCHS=2", 'PROFILE="ci"', "SOURCE=mnist", "FRACTIONS=(0.1, 1.0)", "FINE_TUNE=false", "X=None"]
    parsed = running.parse_parameters(items)
    assert parsed == {
        "EPOCHS": 2,
        "PROFILE": "ci",
        "SOURCE": "mnist",
        "FRACTIONS": (0.1, 1.0),
        "FINE_TUNE": False,
        "X": None,
    }
    assert running.parse_parameters(["PROFILE=ci"]) == running.parse_parameters(['PROFILE="ci"'])


@pytest.mark.parametrize("bad", ["EPOCHS", "=2", "2X=3", "EPOCHS=", "class=1", "A B=1"])
def test_malformed_parameter_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match=f"-p {bad}: a parameter is NAME=VALUE"):
        running.parse_parameters(["EPOCHS=2", bad])


def test_bad_parameters_stop_the_run_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    # 00_welcome's parameters cell only has PROFILE; 01 has EPOCHS, so the hint points there.
    assert cli.main(["run", "00", "01", "-p", "EPOCHS=2", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        "-p EPOCHS=2: the `parameters` cell of 00_welcome does not define EPOCHS; it defines PROFILE." in err
    )
    assert "run only the lessons that define EPOCHS: 01_what_is_transfer_learning" in err
    assert cli.main(["run", "00", "-p", "EPOCHS", "--output", str(out)]) == 2
    assert "-p EPOCHS: a parameter is NAME=VALUE" in capsys.readouterr().err
    plain = _tiny_notebook(tmp_path / "plain.ipynb", ["print(1)"])
    with pytest.raises(ConfigError, match=r"-p N=3: plain has no cell tagged `parameters`"):
        running.run_course([plain], parameters={"N": 3}, output=out)
    assert cli.main(["run", "00", "--profile", "gpu", "--output", str(out)]) == 2
    assert "Unknown profile 'gpu'" in capsys.readouterr().err
    assert not out.exists(), "nothing may run (or be written) when the options are wrong"


def test_papermill_injects_parameters_right_after_the_parameters_cell(tmp_path):
    nb = _tiny_notebook(
        tmp_path / "params.ipynb",
        ["print(repr(N), repr(KS), repr(NAME))"],
        parameters="N = 1\nKS = (1, 3)\nNAME = 'a'",
    )
    run = running.run_course([nb], parameters={"N": 2, "KS": (10,), "NAME": "b"}, output=tmp_path / "out")
    assert run.ok, run.table()
    executed = nbformat.read(str(tmp_path / "out" / "params.ipynb"), as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in executed.cells]
    assert tags[1:3] == [["parameters"], ["injected-parameters"]]
    assert sum("injected-parameters" in t for t in tags) == 1
    assert executed.cells[-1].outputs[0]["text"] == "2 (10,) 'b'\n", "a tuple stays a tuple"
    assert "papermill" in executed.metadata, "papermill ran it"


def test_parameter_names_are_read_from_the_parameters_cell(tmp_path):
    nb = nbformat.read(str(_boom(tmp_path)), as_version=4)
    assert running.parameter_names(nb) == ["N"]
    plain = nbformat.read(str(_tiny_notebook(tmp_path / "plain.ipynb", ["x = 1"])), as_version=4)
    assert running.parameter_names(plain) is None


# --------------------------------------------------------------------------- stream output
def _keras_progress_chunks() -> list[str]:
    """What a Keras progress bar writes, chunk by chunk, when it can redraw (as in a kernel)."""
    import io

    import keras

    chunks: list[str] = []

    class Capture(io.StringIO):
        def write(self, text):
            chunks.append(text)
            return len(text)

        def isatty(self):
            return True

    stdout, sys.stdout = sys.stdout, Capture()
    try:
        for epoch in range(2):
            print(f"Epoch {epoch + 1}/2")
            bar = keras.utils.Progbar(47, interval=0)  # redraw at every step, as slow steps do
            for step in range(47):
                bar.update(step + 1, values=[("loss", 1.0 / (step + 1))])
    finally:
        sys.stdout = stdout
    return chunks


def test_progress_bars_render_as_a_terminal_shows_them():
    chunks = _keras_progress_chunks()
    assert sum("\b" in c or "\r" in c for c in chunks) >= 2 * 46, "Keras redraws its bar at every step"
    cell = nbformat.v4.new_code_cell("model.fit(...)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=c) for c in chunks]
    cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text="a warning\n"))
    nb = running.tidy_streams(nbformat.v4.new_notebook(cells=[cell]))
    stdout, stderr = nb.cells[0].outputs
    lines = stdout.text.splitlines()
    assert "\b" not in stdout.text and "\r" not in stdout.text
    assert len(lines) == 4, lines  # per epoch: its title and the final bar
    assert lines[0] == "Epoch 1/2" and "47/47" in lines[1] and "loss" in lines[1]
    assert stderr.text == "a warning\n"


def test_carriage_returns_and_backspaces():
    assert running._apply_carriage_returns("10%\r50%\r100%\ndone\r\n") == "100%\ndone\n"
    assert running._apply_backspaces("abc\b\bd\n\bx") == "ad\nx"


# --------------------------------------------------------------------------- running
@pytest.mark.slow
@pytest.mark.notebook
def test_run_course_runs_a_real_lesson_with_an_injected_parameter(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TLCOURSE_RECORD_DIR", str(tmp_path / "records"))
    out = tmp_path / "course"
    # The kernels get TLCOURSE_PROFILE=cpu, and the injected PROFILE = "ci" wins over it.
    run = running.run_course(
        ["00"], profile="cpu", parameters=running.parse_parameters(['PROFILE="ci"']), output=out
    )
    assert run.ok, run.table()
    (row,) = run.rows
    assert (row.name, row.status, row.error) == ("00_welcome", "passed", "")
    assert 0 < row.seconds < 600
    assert row.title == "00 · Welcome and set-up"
    executed = nbformat.read(str(out / "00_welcome.ipynb"), as_version=4)
    index = _parameters_cells(executed)[0]
    injected = executed.cells[index + 1]
    assert injected.metadata["tags"] == ["injected-parameters"]
    assert injected.source.strip() == '# Parameters\nPROFILE = "ci"'  # papermill's injection
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "profile   ci:" in printed
    assert executed.metadata["tlcourse"]["status"] == "passed"
    html = (out / "00_welcome.html").read_text(encoding="utf-8")
    assert "<title>00 · Welcome and set-up</title>" in html
    assert "data:image/png;base64," in html, "the figures are embedded in the HTML"
    assert "\b" not in html and "\r" not in html.replace("\r\n", "\n"), (
        "progress bars as a terminal shows them"
    )
    index_html = (out / "index.html").read_text(encoding="utf-8")
    assert '<a href="00_welcome.html">00 · Welcome and set-up</a></td><td>✅</td>' in index_html
    lines = capsys.readouterr().out.splitlines()
    assert "✅ 00_welcome (" in lines[0], "a line per lesson as it finishes"
    (line,) = [text for text in lines if text.startswith("00_welcome ")]
    assert line.split() == ["00_welcome", "✅", f"{row.seconds:.1f}"], "the table: lesson, status, seconds"


def test_a_failing_notebook_fails_the_run(tmp_path, capsys):
    boom = _boom(tmp_path)
    good = _tiny_notebook(tmp_path / "good.ipynb", ["print('fine')"])
    run = running.run_course([boom, good], output=tmp_path / "out")
    assert not run.ok
    assert [(r.name, r.status) for r in run.rows] == [("boom", "failed"), ("good", "passed")]
    # In [1] is the parameters cell, In [2] `x = 1`: the error is the next one, first line only.
    assert run.rows[0].error == "In [3]: ValueError: bad value"
    table = capsys.readouterr().out
    assert "boom    ❌" in table and "In [3]: ValueError: bad value" in table and "total   1/2" in table
    executed = nbformat.read(str(tmp_path / "out" / "boom.ipynb"), as_version=4)
    assert executed.cells[-1].outputs == [], "a lesson stops at its first error"
    assert "❌" in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    # The command: exit code 1; --keep-going runs the cells after the error too.
    assert cli.main(["run", str(boom), "--keep-going", "--output", str(tmp_path / "cli")]) == 1
    assert "In [3]: ValueError: bad value" in capsys.readouterr().out
    executed = nbformat.read(str(tmp_path / "cli" / "boom.ipynb"), as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "after the error\n"


def test_without_nbconvert_the_run_still_writes_notebooks_and_says_so_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nbconvert", None)  # `import nbconvert` now fails as if not installed
    good = _tiny_notebook(tmp_path / "good.ipynb", ["print('fine')"])
    other = _tiny_notebook(tmp_path / "other.ipynb", ["print('fine')"])
    assert cli.main(["run", "--output", str(tmp_path / "out"), str(good), str(other)]) == 0
    assert capsys.readouterr().out.count("nbconvert is not installed, so no HTML is written") == 1
    assert sorted(p.name for p in (tmp_path / "out").glob("*.*")) == [
        "good.ipynb",
        "index.html",
        "other.ipynb",
    ]
    assert '<a href="good.ipynb">good title</a>' in (tmp_path / "out" / "index.html").read_text(
        encoding="utf-8"
    )


def test_ctrl_c_stops_the_run_shuts_the_kernel_down_and_reports_what_ran(tmp_path):
    fifo = tmp_path / "kernel.pid"
    os.mkfifo(fifo)
    sleepy = _tiny_notebook(
        tmp_path / "sleepy.ipynb",
        [
            f"import os\nwith open({str(fifo)!r}, 'w') as f:\n    f.write(str(os.getpid()))",
            "import time\ntime.sleep(600)",
        ],
    )
    after = _tiny_notebook(tmp_path / "after.ipynb", ["print(1)"])
    command = [
        sys.executable,
        "-m",
        "tlcourse.cli",
        "run",
        str(sleepy),
        str(after),
        "--output",
        str(tmp_path / "out"),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = []
    reader = threading.Thread(target=lambda: pid.append(int(fifo.read_text())), daemon=True)
    reader.start()
    reader.join(timeout=120)  # the kernel writes its pid from the first cell, then sleeps in the second
    if not pid:
        proc.kill()
        pytest.fail(f"the kernel never started: {proc.communicate()}")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "sleepy  ❌" in stdout and "KeyboardInterrupt: stopped by Ctrl-C" in stdout
    assert "stopped by Ctrl-C: after did not run" in stdout
    assert "Traceback" not in stderr
    try:
        os.kill(pid[0], 0)
        state = Path(f"/proc/{pid[0]}/stat").read_text().split()[2]
        assert state == "Z", f"the kernel {pid[0]} still runs after the course run stopped"
    except ProcessLookupError:
        pass
    assert (tmp_path / "out" / "sleepy.ipynb").exists() and (tmp_path / "out" / "index.html").exists()


# --------------------------------------------------------------------------- dry runs
DRY_CELLS = [
    "import socket\nimport keras\nimport tlcourse\ncourse = tlcourse.setup('99', profile=PROFILE)",
    "data = tlcourse.data.load('beans', image_size=32)\nprint(data.source, data.sizes, course.precision)",
    "model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),\n"
    "    keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])\n"
    "model.compile('adam', keras.losses.SparseCategoricalCrossentropy(from_logits=True))\n"
    "history = model.fit(data.batches('train'), epochs=4, verbose=0)\nprint('epochs run', len(history.epoch))",
    "try:\n    socket.create_connection(('example.org', 80), timeout=1)\nexcept Exception as exc:\n"
    "    print('blocked:', type(exc).__name__)",
]


@pytest.mark.slow
@pytest.mark.notebook
def test_a_dry_run_runs_the_online_path_against_the_stand_in_and_writes_a_plan(tmp_path):
    nb = _tiny_notebook(tmp_path / "99_dry.ipynb", DRY_CELLS, parameters="PROFILE = None")
    plan_file = tmp_path / "plan.json"
    run = running.run_course([nb], profile="full", dry_run=True, output=tmp_path / "out", plan_file=plan_file)
    assert run.ok, run.table()
    executed = nbformat.read(str(tmp_path / "out" / "99_dry.ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "tfds" in printed and "mixed_float16" in printed, "online, and mixed precision as on a T4"
    assert "epochs run 4" in printed, "every epoch runs (one step each)"
    assert "blocked: NetworkAttemptError" in printed, "the socket guard is on"
    (row,) = json.loads(plan_file.read_text())
    assert (row["lesson"], row["profile"], row["status"]) == ("99", "full", "ok")
    assert row["downloads_mb"] == pytest.approx(180_024_906 / 2**20, abs=0.1), "beans' three zip files"
    assert row["examples"]["real"] == 1034 + 133 + 128
    assert 0 < row["host_ram_gb_measured"] <= row["host_ram_gb_planned"] < 10
    assert 0 < row["device_ram_gb_planned"] < 2 and row["t4_minutes_planned"] > 0
    assert "host GB" in run.table() and row["lesson"] == "99"
    assert row["dry_run_s"]["wall"] > 0 and row["dry_run_s"]["cpu"] > 0, "what the dry run cost"
