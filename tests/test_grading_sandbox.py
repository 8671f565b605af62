"""The grading sandbox on small notebooks (no TensorFlow), and the batch's bookkeeping without kernels.

What each protection does is checked where this machine has it (``sandbox.probe()``); where it
does not, the test is skipped with the reason the probe gives.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader")
pytest.importorskip("distributed")

from tlcourse_tools.grading import batch, kernel, report, sandbox, worker  # noqa: E402
from tlcourse_tools.grading.kernel import GiB, Limits  # noqa: E402

from tlcourse.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ISOLATION = sandbox.probe()
needs_namespaces = pytest.mark.skipif(
    ISOLATION.mode == "none", reason=f"no namespaces here: {'; '.join(ISOLATION.missing)}"
)
needs_cgroup = pytest.mark.skipif(ISOLATION.cgroup is None, reason="no memory cgroup here")


def run(*cells, **limits):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells])
    limits.setdefault("seconds", 60)
    return kernel.execute(nb, limits=Limits(**limits))


def stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def errors(cell) -> list[tuple[str, str]]:
    return [(o.ename, o.evalue) for o in cell.outputs if o.output_type == "error"]


def test_probe_says_what_it_can_do_and_why_not():
    assert ISOLATION.mode in ("root", "userns", "none")
    text = ISOLATION.describe()
    assert "limit" in text
    if ISOLATION.mode != "root" or ISOLATION.cgroup is None:
        assert ISOLATION.missing  # every weaker mode says why


@needs_namespaces
def test_student_code_sees_neither_the_repository_nor_the_network(tmp_path):
    listener = socket.create_server(("0.0.0.0", 0))
    port = listener.getsockname()[1]
    listener.settimeout(0.2)
    secret = ROOT / "solutions" / "00_welcome.ipynb"
    outside = tmp_path / "outside.txt"
    executed, facts = run(
        f"""
        import os, pathlib, socket
        print("solution", os.path.exists({str(secret)!r}), os.path.exists({str(ROOT / ".git")!r}))
        print("repository", sorted(os.listdir({str(ROOT)!r})))
        for path in [{str(outside)!r}, "/etc/hacked", {str(ROOT / "README.md")!r}]:
            try:
                pathlib.Path(path).write_text("x")
                print("wrote", path)
            except OSError as error:
                print("refused", type(error).__name__)
        pathlib.Path("mine.txt").write_text("ok")
        print("own folder", pathlib.Path("mine.txt").read_text())
        for host in ["127.0.0.1", {socket.gethostbyname(socket.gethostname())!r}, "1.1.1.1"]:
            try:
                socket.create_connection((host, {port}), timeout=2)
                print("connected", host)
            except OSError as error:
                print("no connection", host)
        """
    )
    text = stdout(executed.cells[0])
    assert "solution False False" in text
    assert "solutions" not in text.split("repository")[1].splitlines()[0]
    assert "wrote" not in text and text.count("refused") == 3
    assert "own folder ok" in text
    assert "connected" not in text and text.count("no connection") == 3
    with pytest.raises(OSError):
        listener.accept()
    listener.close()
    assert not outside.exists()


@pytest.mark.skipif(ISOLATION.mode != "root", reason="needs root to run as another user")
def test_each_kernel_runs_as_a_leased_unprivileged_uid():
    executed, facts = run("import os; print(os.getuid(), os.getgid(), os.getgroups())")
    uid = facts["uid"]
    assert kernel.UID_BASE <= uid < kernel.UID_BASE + kernel.UID_COUNT
    assert stdout(executed.cells[0]).split()[:2] == [str(uid), str(uid)]


def test_a_cell_over_its_time_is_interrupted_and_the_rest_runs():
    executed, _ = run("while True:\n    pass", "print('next cell')", seconds=60, cell_seconds=3)
    assert errors(executed.cells[0])[0][0] in ("CellTimeoutError", "KeyboardInterrupt")
    assert "next cell" in stdout(executed.cells[1])


def test_a_kernel_ignoring_interrupts_is_killed_at_the_deadline(monkeypatch):
    monkeypatch.setattr(kernel, "HARD_KILL_GRACE", 3.0)
    started = time.monotonic()
    executed, _ = run(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        "print('never')",
        seconds=20,
    )
    assert time.monotonic() - started < 60
    names = [e[0] for e in errors(executed.cells[0])]
    assert "KernelDied" in names or "CellTimeoutError" in names
    assert errors(executed.cells[1])[0][0] == "NotRun"
    assert "timed out" in errors(executed.cells[1])[0][1] or "ran out" in errors(executed.cells[1])[0][1]


@needs_cgroup
def test_memory_over_the_limit_kills_the_kernel_and_says_why():
    executed, _ = run(
        "print('before')",
        "hog = []\nwhile True:\n    hog.append(b'x' * 2**24)",
        "print('after')",
        memory_bytes=GiB // 2,
    )
    assert "before" in stdout(executed.cells[0])
    assert ("KernelDied", "out of memory: killed at the 0.5 GB limit") in errors(executed.cells[1])
    assert "out of memory" in errors(executed.cells[2])[0][1]


def test_output_is_capped_per_cell():
    executed, facts = run("print('x' * 5_000_000)", "print('small')", cell_output_bytes=100_000)
    assert len(stdout(executed.cells[0])) < 200_000
    assert "dropped" in stdout(executed.cells[0])
    assert stdout(executed.cells[1]).strip() == "small"
    assert facts["truncated"]


@needs_namespaces
def test_forked_processes_die_with_the_kernel():
    executed, facts = run(
        """
        import os, time
        children = []
        try:
            for _ in range(10_000):
                pid = os.fork()
                if pid == 0:
                    os.setsid()  # even a child that leaves the process group
                    time.sleep(3600)
                    os._exit(0)
                children.append(pid)
        finally:
            print(len(children), "children")
        """,
        processes=64,
    )
    assert "BlockingIOError" in [e[0] for e in errors(executed.cells[0])]
    assert 0 < int(stdout(executed.cells[0]).split()[0]) < 64
    if facts["uid"] is not None:
        ended = _uptime()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _processes_of(facts["uid"], before=ended):
            time.sleep(0.5)
        assert not _processes_of(facts["uid"], before=ended)


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def _procs():
    """(pid, uid, parent pid, start in seconds since boot) of every process."""
    ticks = os.sysconf("SC_CLK_TCK")
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            status = (folder / "status").read_text().splitlines()
            uid = int(next(line for line in status if line.startswith("Uid:")).split()[1])
            fields = (folder / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, StopIteration, ValueError, IndexError):
            continue
        yield int(folder.name), uid, int(fields[1]), int(fields[19]) / ticks


def _processes_of(uid: int, *, before: float) -> list[int]:
    """Processes of ``uid`` started before ``before`` (seconds since boot): tests running in
    parallel may lease the same uid afterwards."""
    return [pid for pid, owner, _parent, started in _procs() if owner == uid and started < before]


GRADER = """
import sys, time, nbformat
from tlcourse_tools.grading.kernel import Limits, execute
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    "import os; print(os.getpid()); open('/proc/self/status').read()\\nimport time; time.sleep(600)")])
execute(nb, limits=Limits(seconds=900))
"""


@pytest.mark.skipif(ISOLATION.mode != "root", reason="needs root to tell the sandbox's processes apart")
def test_a_killed_grader_takes_its_sandbox_down(tmp_path):
    grader = subprocess.Popen([sys.executable, "-c", GRADER], env={**os.environ})
    deadline = time.monotonic() + 120
    sandboxed: set[int] = set()
    while time.monotonic() < deadline and not sandboxed:
        table = {pid: (uid, parent) for pid, uid, parent, _started in _procs()}
        sandboxed = {
            pid
            for pid, (uid, _parent) in table.items()
            if kernel.UID_BASE <= uid < kernel.UID_BASE + kernel.UID_COUNT
            and _descends(pid, grader.pid, table)
        }
        time.sleep(0.5)
    assert sandboxed, "the sandboxed kernel never started"
    time.sleep(2)
    grader.send_signal(signal.SIGKILL)
    grader.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in sandboxed):
        time.sleep(0.5)
    assert not any(Path(f"/proc/{pid}").exists() for pid in sandboxed)
    kernel.sweep()


def _descends(pid: int, ancestor: int, table: dict) -> bool:
    for _ in range(10):
        pid = table.get(pid, (None, 0))[1]
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


# =========================================================================== bookkeeping, no kernels
def _notebook(path: Path, text: str = "{}") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_submissions_are_found_in_both_layouts(tmp_path):
    nbgrader_layout = tmp_path / "course" / "submitted"
    _notebook(nbgrader_layout / "alice" / "04" / "04_fine_tuning.ipynb")
    _notebook(nbgrader_layout / "bob" / "04" / "renamed.ipynb")
    (nbgrader_layout / "carol" / "04").mkdir(parents=True)
    _notebook(nbgrader_layout / "dave" / "03" / "03_feature_extraction.ipynb")  # another assignment
    jobs = batch.find_submissions(tmp_path / "course", assignment="04", notebook="04_fine_tuning.ipynb")
    assert [(j.student, bool(j.content)) for j in jobs] == [("alice", True), ("bob", True), ("carol", False)]
    assert "no notebook" in jobs[2].origin
    flat = tmp_path / "flat"
    _notebook(flat / "erin.ipynb", '{"a": 1}')
    _notebook(flat / ".hidden.ipynb")
    jobs = batch.find_submissions(flat, assignment="04", notebook="04_fine_tuning.ipynb")
    assert [j.student for j in jobs] == ["erin"]
    assert jobs[0].digest == hashlib.sha256(b'{"a": 1}').hexdigest()


def test_submission_folders_that_cannot_be_graded_say_why(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        batch.find_submissions(tmp_path / "missing", assignment="04", notebook="x.ipynb")
    with pytest.raises(ConfigError, match="No submissions"):
        batch.find_submissions(tmp_path, assignment="04", notebook="x.ipynb")
    _notebook(tmp_path / "alice" / "04" / "x.ipynb")
    _notebook(tmp_path / "alice.ipynb")
    with pytest.raises(ConfigError, match="two submissions for alice"):
        batch.find_submissions(tmp_path, assignment="04", notebook="x.ipynb")


def test_unknown_assignment_is_refused_before_anything_runs(tmp_path, capsys):
    from tlcourse.cli import main  # the student package's command forwards to the tools

    assert main(["grade", str(tmp_path), "--assignment", "42", "--out", str(tmp_path / "out")]) == 2
    assert "assignment ids are the lesson numbers" in capsys.readouterr().err


def _outcome(student, statuses, *, hint="use logits", seconds=20.0):
    rows = [
        {"check": f"00.{i + 1}", "status": s, "points": float(s == "passed"), "max_points": 1.0, "hint": hint}
        for i, s in enumerate(statuses)
    ]
    return {
        "student": student,
        "assignment": "00",
        "status": "graded",
        "error": "",
        "rows": rows,
        "score": sum(r["points"] for r in rows),
        "max_score": 3.0,
        "notes": [],
        "seconds": seconds,
        "cell_seconds": seconds - 3,
    }


def test_gradebook_summary_and_report_from_outcomes(tmp_path):
    outcomes = [
        _outcome("ann", ["passed", "passed", "passed"]),
        _outcome("ben", ["failed", "passed", "not attempted"]),
        _outcome("cat", ["failed", "error", "not attempted"]),
        worker.error_outcome(worker.Job("dan", "00", "00_welcome.ipynb", "", b""), "not a notebook"),
    ]
    gradebook, summary = batch.write_gradebook(tmp_path, outcomes)
    lines = gradebook.read_text().splitlines()
    assert lines[0] == "student,assignment,check,status,points,hint"
    assert len(lines) == 1 + 3 * 3 + 1
    assert "dan,00,,error,0,not a notebook" in lines
    assert summary.read_text().splitlines()[1].startswith("ann,00,3,3,100,3,0,0,0,graded,20.0,17.0,3.0")
    page = report.write_report(tmp_path / "report.html", outcomes, assignment="00", isolation=ISOLATION)
    text = page.read_text()
    assert text.count("<img") == 3 and "use logits" in text and "not a notebook" in text
    assert report.misconceptions(outcomes)[0][:3] == ("00.1", "use logits", 2)
    assert report.pass_rates(outcomes)["00.1"]["passed"] == 1
    assert oct(page.stat().st_mode & 0o777) == "0o600"
    assert json.loads(json.dumps(outcomes))  # results are plain data


@pytest.mark.parametrize("mode", ["userns", "none"])
def test_weaker_isolation_still_grades_and_says_what_is_missing(monkeypatch, mode):
    monkeypatch.setenv("TLCOURSE_GRADE_ISOLATION", mode)
    monkeypatch.setattr(sandbox, "_PROBED", None)
    isolation = sandbox.probe()
    if isolation.mode != mode:
        pytest.skip(f"{mode} is not available here: {isolation.missing}")
    executed, facts = run(
        f"""
        import os, socket
        print("solution", os.path.exists({str(ROOT / "solutions" / "00_welcome.ipynb")!r}))
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=2)
        except Exception as error:
            print("no connection:", type(error).__name__)
        """
    )
    text = stdout(executed.cells[0])
    if mode == "userns":
        assert "solution False" in text and "no connection" in text
        assert all("uid" in line for line in isolation.missing)
    else:
        assert "solution True" in text  # only a fresh folder and limits: the report says so
        assert any("namespaces" in line for line in isolation.missing)
        assert "rlimits" in isolation.describe()


def test_an_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ConfigError, match="No Dask scheduler answers at tcp://127.0.0.1:9"):
        batch._start_dask(1, "tcp://127.0.0.1:9", connect_timeout="2s")
