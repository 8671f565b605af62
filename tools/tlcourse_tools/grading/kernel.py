"""The grader's side of the sandbox: a leased uid, a cgroup, the spec, and nbgrader's Execute in it.

:class:`Sandbox` prepares one submission's sandbox (see :mod:`tlcourse_tools.grading.sandbox` for
what runs inside); :class:`SandboxKernelManager` starts the kernel through it, over Unix sockets;
:class:`SandboxedExecute` is nbgrader's own ``Execute`` preprocessor with a wall-clock budget for
the whole notebook, a cap on each cell's output, and a kernel that dies (out of memory, killed at
the deadline) recorded in the cells instead of failing the whole notebook.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shutil
import signal
import site
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Float, Integer, Unicode

from tlcourse_tools.grading import sandbox as launcher

__all__ = [
    "Limits",
    "Sandbox",
    "SandboxKernelManager",
    "SandboxedExecute",
    "execute",
    "scratch_base",
    "sweep",
]

GiB = 2**30
UID_BASE = int(os.environ.get("TLCOURSE_GRADE_UID_BASE", "64000"))
UID_COUNT = 256
HARD_KILL_GRACE = 20.0  # seconds after the budget before a kernel that ignores interrupts is killed


@dataclass(frozen=True)
class Limits:
    """What one submission may use.

    Attributes
    ----------
    seconds : float
        Wall-clock budget for the whole notebook.
    cell_seconds : float, optional
        Limit per cell (default: the whole budget). A cell over it is interrupted and the next
        cells run; once the budget is spent, the remaining cells are not run.
    memory_bytes : int
        Memory of every process of the submission together.
    processes : int
        Processes and threads (TensorFlow alone starts dozens of threads).
    file_bytes, tmpfs_bytes : int
        Largest file it may write; size of its working folder and of its ``/tmp``.
    cell_output_bytes : int
        Output kept per cell (the rest is dropped, with a note).
    """

    seconds: float = 600.0
    memory_bytes: int = 4 * GiB
    cell_seconds: float | None = None
    processes: int = 512
    file_bytes: int = GiB
    open_files: int = 4096
    tmpfs_bytes: int = GiB
    cell_output_bytes: int = 2**20


# =========================================================================== uid leases
def _lock_dir() -> Path:
    for candidate in (Path("/run/tlcourse-grade"), Path(f"/tmp/tlcourse-grade-locks-{os.geteuid()}")):
        with contextlib.suppress(OSError):
            candidate.mkdir(mode=0o700, parents=True, exist_ok=True)
            if candidate.stat().st_uid == os.geteuid() and os.access(candidate, os.W_OK):
                return candidate
    raise OSError("no folder for the grader's uid locks")


def _uid_in_use(uid: int) -> bool:
    with contextlib.suppress(KeyError):
        pwd.getpwuid(uid)
        return True  # a real account: never borrow it
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("Uid:"):
                    if str(uid) in line.split()[1:]:
                        return True
                    break
    return False


class UidLease:
    """An unprivileged uid no other sandbox on this machine uses until :meth:`release` (a file lock)."""

    def __init__(self):
        folder = _lock_dir()
        for uid in range(UID_BASE, UID_BASE + UID_COUNT):
            handle = open(folder / f"uid-{uid}.lock", "w")  # noqa: SIM115 - held for the lease
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            if _uid_in_use(uid):
                handle.close()
                continue
            self.uid, self._handle = uid, handle
            return
        raise OSError(f"all {UID_COUNT} sandbox uids from {UID_BASE} are in use")

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


# =========================================================================== cgroups
class Cgroup:
    """A cgroup (v2, or v1's memory + pids) capping one submission, created and removed by the grader."""

    def __init__(self, version: str, roots: dict[str, Path], name: str, limits: Limits):
        self.version, self.folders = version, []
        for controller, root in roots.items():
            root.mkdir(exist_ok=True)
            if version == "v2":
                with contextlib.suppress(OSError):
                    (root / "cgroup.subtree_control").write_text("+memory +pids")
            folder = root / name
            folder.mkdir()
            self.folders.append(folder)
            if version == "v2":
                (folder / "memory.max").write_text(str(limits.memory_bytes))
                with contextlib.suppress(OSError):
                    (folder / "memory.swap.max").write_text("0")
                with contextlib.suppress(OSError):
                    (folder / "pids.max").write_text(str(limits.processes))
            elif controller == "memory":
                (folder / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                with contextlib.suppress(OSError):
                    (folder / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes))
            elif controller == "pids":
                (folder / "pids.max").write_text(str(limits.processes))

    def oom_kills(self) -> int:
        for folder in self.folders:
            for name in ("memory.events", "memory.oom_control"):
                with contextlib.suppress(OSError):
                    for line in (folder / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill":
                            return int(value)
        return 0

    def pids(self) -> list[int]:
        found: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        return sorted(found)

    def kill(self, *, wait: float = 30.0) -> None:
        """SIGKILL every process of the group; wait (up to ``wait`` s) until they are gone."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def remove(self) -> None:
        self.kill()
        for folder in self.folders:
            for _ in range(40):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _sweep_stale(folder: Path, *, cgroup: bool) -> None:
    """Remove what sandboxes of dead graders left behind (named ``<grader pid>-<random>``)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        pid = entry.name.split("-", 1)[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        with contextlib.suppress(OSError):
            if cgroup:
                if not (entry / "cgroup.procs").read_text().split():
                    entry.rmdir()
            else:
                shutil.rmtree(entry, ignore_errors=True)


def scratch_base() -> Path:
    """Where the grader makes each submission's folder (``$TMPDIR/tlcourse-grade-<uid>``, mode 0711)."""
    import tempfile

    base = Path(tempfile.gettempdir()) / f"tlcourse-grade-{os.geteuid()}"
    base.mkdir(mode=0o711, exist_ok=True)
    base.chmod(0o711)
    return base


def sweep() -> None:
    """Remove the cgroups and folders left by graders that died (a killed Dask worker)."""
    _version, roots = launcher.cgroup_roots()
    for folder in roots.values():
        _sweep_stale(folder, cgroup=True)
    _sweep_stale(scratch_base(), cgroup=False)


# =========================================================================== what the kernel sees
def _package_dirs() -> list[Path]:
    import tlcourse
    import tlcourse_tools

    return [Path(tlcourse.__file__).resolve().parent, Path(tlcourse_tools.__file__).resolve().parent]


def _read_only_paths() -> list[str]:
    """The system, this Python (interpreter, environment, site-packages) and the two packages."""
    paths = [p for p in launcher.SYSTEM_DIRS if os.path.lexists(p)]
    python = [sys.base_prefix, sys.prefix, sys.exec_prefix, os.path.dirname(sys.executable)]
    python += [p for p in site.getsitepackages() + [site.getusersitepackages()] if os.path.isdir(p)]
    for path in python + [str(p) for p in _package_dirs()]:
        paths.extend([path, os.path.realpath(path)])
    return list(dict.fromkeys(paths))


def _matplotlib_seed() -> list[dict]:
    """matplotlib's font list, so that the first plot does not spend seconds rebuilding it."""
    with contextlib.suppress(Exception):
        import matplotlib

        cache = Path(matplotlib.get_cachedir())
        return [{"source": str(p), "name": f".matplotlib/{p.name}"} for p in cache.glob("fontlist-*.json")]
    return []


def kernel_environment(
    *, workdir: str, profile: str, threads: int | None, cache: str | None, network: bool = False
) -> dict:
    """The kernel's whole environment: nothing of the grader's is passed on but what is listed here."""
    packages = _package_dirs()
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "PYTHONPATH": os.pathsep.join(str(p.parent) for p in packages),
        "HOME": workdir,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{workdir}/.matplotlib",
        "KERAS_HOME": f"{workdir}/.keras",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        # nbgrader scores a check cell 0 if it writes anything to stderr: keep TensorFlow's C++ log and
        # Python's warnings (Keras warns from inside some checks) out of the cells.
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
        "NBGRADER_EXECUTION": "autograde",
        "TLCOURSE_OFFLINE": "1",
        "TLCOURSE_PROFILE": profile,
        "TLCOURSE_RECORD_DIR": f"{workdir}/.records",
    }
    if cache:
        env["TLCOURSE_CACHE"] = cache
    if network:
        # No network namespace: tlcourse's socket guard at least stops the course's own code (student
        # code can undo it; the report says the network was not isolated).
        env["TLCOURSE_SOCKET_GUARD"] = "1"
    if threads:
        for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            env[name] = str(threads)
    return env


# =========================================================================== one sandbox
_SANDBOXES: dict[str, Sandbox] = {}


class Sandbox:
    """One submission's sandbox on the grader's side.

    Parameters
    ----------
    scratch : path
        A fresh folder of the grader's (mode 0711); the sandbox's folders go inside.
    limits : Limits
    env : dict
        The kernel's environment (see :func:`kernel_environment`).
    files_from : path, optional
        A folder whose files (not notebooks) are copied into the kernel's working folder.
    """

    def __init__(self, scratch: Path, *, limits: Limits, profile: str, threads: int | None = None):
        self.id = uuid.uuid4().hex
        self.scratch, self.limits = Path(scratch), limits
        self.isolation = launcher.probe()
        self.profile, self.threads = profile, threads
        self.lease: UidLease | None = None
        self.cgroup: Cgroup | None = None
        self.timed_out = False
        self.cell_seconds = 0.0
        self.kernel_start_seconds = 0.0
        self.truncated_cells: list[str] = []
        self._timer: threading.Timer | None = None
        self._kernel_pid: int | None = None

    # ------------------------------------------------------------------ set-up
    def start(self, *, files_from: Path | None = None) -> Sandbox:
        mode = self.isolation.mode
        root = os.geteuid() == 0
        self.scratch.chmod(0o711)
        uid = gid = None
        if mode == "root" and root:
            self.lease = UidLease()
            uid = gid = self.lease.uid
        self.uid = uid
        self.ipc_dir = self.scratch / "ipc"
        self.workdir = self.scratch / "work"
        for folder in (self.ipc_dir, self.workdir):
            folder.mkdir(mode=0o700)
            if uid is not None:
                os.chown(folder, uid, gid)
        (self.scratch / "root").mkdir(mode=0o755)
        cache = os.environ.get("TLCOURSE_CACHE") or str(Path.home() / ".cache" / "tlcourse")
        overlays = []
        if mode != "none" and os.path.isdir(cache):
            for name in ("cache-upper", "cache-work"):
                (self.scratch / name).mkdir(mode=0o700)
            overlays.append(
                {
                    "lower": cache,
                    "upper": str(self.scratch / "cache-upper"),
                    "work": str(self.scratch / "cache-work"),
                }
            )
        if self.isolation.cgroup:
            version, roots = launcher.cgroup_roots()
            for folder in roots.values():
                _sweep_stale(folder, cgroup=True)
            self.cgroup = Cgroup(version, roots, f"{os.getpid()}-{self.id[:12]}", self.limits)
        env = kernel_environment(
            workdir=str(self.workdir),
            profile=self.profile,
            threads=self.threads,
            cache=cache,
            network=mode == "none",
        )
        self.spec_path = self.scratch / "spec.json"
        spec = {
            "mode": mode,
            "uid": uid,
            "gid": gid,
            "root": str(self.scratch / "root"),
            "workdir": str(self.workdir),
            "ipc_dir": str(self.ipc_dir),
            "log": str(self.scratch / "kernel.log"),
            "files_from": str(files_from) if files_from else None,
            "seed_files": _matplotlib_seed(),
            "read_only": _read_only_paths(),
            "overlays": overlays,
            "cgroups": [str(f) for f in self.cgroup.folders] if self.cgroup else [],
            "env": env,
            "tmpfs_bytes": self.limits.tmpfs_bytes,
            "limits": {
                "file_bytes": self.limits.file_bytes,
                "open_files": self.limits.open_files,
                "processes": self.limits.processes,
                "data_bytes": None if self.cgroup else self.limits.memory_bytes,
            },
        }
        if mode == "none":
            _copy_seed(spec)
        self.spec_path.write_text(json.dumps(spec))
        self.spec_path.chmod(0o600)
        _SANDBOXES[self.id] = self
        return self

    def kernel_argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tlcourse_tools.grading.sandbox",
            str(self.spec_path),
            "--",
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
        ]

    # ------------------------------------------------------------------ while it runs
    def started(self, pid: int) -> None:
        self._kernel_pid = pid

    def arm(self, seconds: float) -> None:
        """Kill the kernel at the deadline (after the interrupt nbclient sends on its own at the budget)."""
        self.disarm()
        self._timer = threading.Timer(seconds, self._deadline)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _deadline(self) -> None:
        self.timed_out = True
        self.kill()

    def kill(self) -> None:
        if self.cgroup is not None:
            self.cgroup.kill()
        if self._kernel_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._kernel_pid, signal.SIGKILL)

    def kernel_log(self, limit: int = 600) -> str:
        with contextlib.suppress(OSError):
            lines = (self.scratch / "kernel.log").read_text(errors="replace").splitlines()
            wanted = [line for line in lines if "tlcourse sandbox" in line or "Error" in line]
            return " | ".join(wanted or lines[-3:])[-limit:]
        return ""

    def death_reason(self) -> str:
        if self.cgroup is not None and self.cgroup.oom_kills():
            return f"out of memory: killed at the {self.limits.memory_bytes / GiB:.1f} GB limit"
        if self.timed_out:
            return (
                f"timed out: still running at the {self.limits.seconds:.0f} s limit, and did not stop when "
                "interrupted"
            )
        return "the kernel died (a crash, or killed by a limit on processes or file size)"

    # ------------------------------------------------------------------ tear-down
    def close(self) -> None:
        self.disarm()
        self.kill()
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.lease is not None:
            self.lease.release()
        _SANDBOXES.pop(self.id, None)


def _copy_seed(spec: dict) -> None:
    for item in spec["seed_files"]:
        destination = Path(spec["workdir"], item["name"])
        destination.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            shutil.copyfile(item["source"], destination)


# =========================================================================== Jupyter's side


class _SandboxSpecs(KernelSpecManager):
    sandbox_id = Unicode()

    def get_kernel_spec(self, kernel_name):
        return KernelSpec(
            argv=_SANDBOXES[self.sandbox_id].kernel_argv(), display_name="sandbox", language="python"
        )


class SandboxKernelManager(AsyncKernelManager):
    """A kernel started through the sandbox launcher, talking over Unix sockets in the sandbox's folder."""

    sandbox_id = Unicode("", help="the id of the Sandbox this kernel runs in").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        sandbox = _SANDBOXES[self.sandbox_id]
        self.kernel_spec_manager = _SandboxSpecs(sandbox_id=self.sandbox_id)
        self.transport = "ipc"
        self.ip = str(sandbox.ipc_dir / "kernel")
        self.connection_file = str(sandbox.scratch / "connection.json")

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        await super()._async_launch_kernel(kernel_cmd, **kw)
        process = getattr(self.provisioner, "process", None)
        if process is not None:
            _SANDBOXES[self.sandbox_id].started(process.pid)


def _error(ename: str, evalue: str):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class SandboxedExecute(Execute):
    """nbgrader's Execute with one budget for the notebook, capped output, and kernel deaths recorded.

    - Each cell may run for ``cell_budget`` seconds, and no longer than what is left of ``budget``;
      a cell still running then is interrupted (nbgrader records ``CellTimeoutError``). Once the
      budget is spent, the cells after it are not run.
    - If the kernel dies (out of memory, killed at the deadline), that cell and the ones after it
      get an error output saying why, and the cells before keep their results.
    - A cell keeps at most ``max_cell_output`` bytes of output.
    """

    budget = Float(600.0, help="seconds for the whole notebook").tag(config=True)
    cell_budget = Float(0.0, help="seconds per cell (0: the whole budget)").tag(config=True)
    max_cell_output = Integer(2**20, help="bytes of output kept per cell").tag(config=True)
    sandbox_id = Unicode("").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        sandbox = _SANDBOXES[self.sandbox_id]
        self._deadline = time.monotonic() + self.budget
        self._stopped: str | None = None
        self._cell_bytes: dict[int, int] = {}
        sandbox.arm(self.budget + HARD_KILL_GRACE)
        self._started = time.monotonic()
        try:
            return super().preprocess(nb, resources, km)
        finally:
            sandbox.disarm()

    def _not_run(self, cell, cell_index):
        cell.outputs = [_error("NotRun", f"not run: {self._stopped}")]
        cell.execution_count = None
        self.nb.cells[cell_index] = cell
        return cell

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        sandbox = _SANDBOXES[self.sandbox_id]
        if not sandbox.kernel_start_seconds:
            sandbox.kernel_start_seconds = time.monotonic() - self._started
        remaining = self._deadline - time.monotonic()
        if self._stopped is None and remaining < 1:
            self._stopped = f"the notebook used up its {self.budget:.0f} s"
        if self._stopped is not None:
            return self._not_run(cell, cell_index)
        self.timeout = max(1, int(min(remaining, self.cell_budget or remaining)))
        started = time.monotonic()
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except DeadKernelError:
            reason = sandbox.death_reason()
            self._stopped = f"the kernel died in an earlier cell ({reason})"
            cell.outputs.append(_error("KernelDied", reason))
            self.nb.cells[cell_index] = cell
            return cell
        finally:
            sandbox.cell_seconds += time.monotonic() - started
        timed_out = any(
            o.output_type == "error" and o.get("ename") == "CellTimeoutError" for o in cell.outputs
        )
        if timed_out and self._deadline - time.monotonic() < 1:
            self._stopped = f"a cell was still running when the notebook's {self.budget:.0f} s ran out"
        return cell

    execute_cell = run_sync(async_execute_cell)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        used = self._cell_bytes.get(cell_index, 0)
        if used + size > self.max_cell_output:
            if used <= self.max_cell_output:
                self._cell_bytes[cell_index] = self.max_cell_output + 1
                note = f"\n[tlcourse grade: output beyond {self.max_cell_output // 1024} KB dropped]\n"
                outs.append(new_output("stream", name="stdout", text=note))
                cell_id = self.nb.cells[cell_index].get("id", str(cell_index))
                _SANDBOXES[self.sandbox_id].truncated_cells.append(cell_id)
            return None
        self._cell_bytes[cell_index] = used + size
        return super().output(outs, msg, display_id, cell_index)


def execute(nb, *, limits: Limits | None = None, profile: str = "ci", threads: int | None = None):
    """Run a notebook in a fresh sandbox with :class:`SandboxedExecute` (no nbgrader course needed).

    Returns
    -------
    (NotebookNode, dict)
        The executed copy, and what happened: ``cell_seconds``, ``kernel_start_seconds``,
        ``truncated`` (cells whose output was cut), ``uid`` and ``isolation``.
    """
    import copy
    import tempfile

    from traitlets.config import Config

    limits = limits or Limits()
    scratch = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=scratch_base()))
    sandbox = Sandbox(scratch, limits=limits, profile=profile, threads=threads)
    nb = copy.deepcopy(nb)
    try:
        sandbox.start()
        config = Config()
        config.SandboxedExecute.sandbox_id = sandbox.id
        config.SandboxedExecute.budget = float(limits.seconds)
        config.SandboxedExecute.cell_budget = float(limits.cell_seconds or 0)
        config.SandboxedExecute.max_cell_output = limits.cell_output_bytes
        config.SandboxedExecute.raise_on_iopub_timeout = False
        config.SandboxedExecute.shutdown_kernel = "immediate"
        config.SandboxKernelManager.sandbox_id = sandbox.id
        SandboxedExecute(config=config).preprocess(nb, {"metadata": {"path": str(scratch)}})
        facts = {
            "cell_seconds": sandbox.cell_seconds,
            "kernel_start_seconds": sandbox.kernel_start_seconds,
            "truncated": list(sandbox.truncated_cells),
            "uid": sandbox.uid,
            "isolation": sandbox.isolation,
        }
        return nb, facts
    finally:
        sandbox.close()
        shutil.rmtree(scratch, ignore_errors=True)
