"""Run an untrusted notebook kernel in a sandbox: its own root file system, no network, its own user.

The grader (trusted, usually root) describes a sandbox in a JSON *spec* and starts the kernel as::

    python -m tlcourse_tools.grading.sandbox SPEC.json -- python -m ipykernel_launcher -f CONN.json

This module is that launcher. It uses only the standard library and Linux system calls, and
builds, from the strongest to the weakest, what the machine allows:

- **namespaces** (``unshare``): a network namespace with only a loopback interface (no connection
  leaves the sandbox), a PID namespace (when the kernel stops, every process it forked dies with
  it), an IPC namespace, and a mount namespace whose root is a fresh ``tmpfs`` holding read-only
  binds of the system, the Python environment and the course package only (``pivot_root``): the
  solutions, the gradebook, other students' work and the rest of the disk do not exist in there.
  The kernel's working directory, ``/tmp`` and ``/dev/shm`` are size-limited ``tmpfs`` mounts that
  vanish with it. The course cache is an ``overlay``: readable, and writes go to a private copy.
- **an unprivileged user**: started as root, the kernel runs as a uid leased for this submission
  alone (``--uid``), so it can neither signal nor read another submission's processes. Without
  root, a user namespace gives the same namespaces, and the kernel runs in a nested one whose
  only uid maps to the grader's, without capabilities.
- **limits**: a cgroup (v2, or v1's ``memory`` and ``pids``) caps memory and processes, set up by
  the grader; ``setrlimit`` caps processes, file size and open files (and the data segment when
  no memory cgroup is available: ``RLIMIT_AS`` is not used because TensorFlow reserves ~3 GB of
  address space for ~0.7 GB resident).

The kernel talks to the grader over Unix sockets (ZeroMQ's ``ipc`` transport) in a folder bound
into the sandbox: no TCP port is needed, so the network namespace can stay empty.

:func:`probe` says what is available here, and why not where something is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import platform
import select
import shutil
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Isolation", "probe"]

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
DEVICES = ("null", "zero", "full", "random", "urandom")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class SandboxError(OSError):
    """A system call the sandbox needs failed."""


def _check(result: int, what: str) -> int:
    if result == -1:
        code = ctypes.get_errno()
        raise SandboxError(code, f"{what}: {os.strerror(code)}")
    return result


def _unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None):
    encode = lambda text: text.encode() if text is not None else None  # noqa: E731
    _check(
        _libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
        f"mount {source or ''} on {target}",
    )


def _umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(MNT_DETACH)), f"umount {target}")


def _pivot_root(new_root: str, put_old: str) -> None:
    number = PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise SandboxError(errno.ENOSYS, f"pivot_root: unknown system call number on {platform.machine()}")
    _check(_libc.syscall(ctypes.c_long(number), new_root.encode(), put_old.encode()), "pivot_root")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), 0, 0, 0), "prctl")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


# =========================================================================== what is available
@dataclass(frozen=True)
class Isolation:
    """What the sandbox can do on this machine.

    Attributes
    ----------
    mode : {"root", "userns", "none"}
        ``root``: namespaces and an unprivileged uid per submission; ``userns``: the same
        namespaces inside a user namespace, as the grader's own user; ``none``: only limits,
        a fresh folder and the timeout.
    cgroup : {"v2", "v1", None}
        Which cgroup interface limits memory and processes (None: ``setrlimit`` only).
    missing : tuple of str
        One sentence per protection that is not available, with the reason.
    """

    mode: str
    cgroup: str | None
    missing: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        what = {
            "root": "own root file system, no network, own PID space, an unprivileged uid per submission",
            "userns": "own root file system, no network, own PID space (user namespace, your own uid)",
            "none": "a fresh folder, rlimits and the timeout only",
        }[self.mode]
        limits = {"v2": "cgroup v2 memory/pids limits", "v1": "cgroup v1 memory/pids limits"}.get(
            self.cgroup or "", "rlimit memory limit (data segment)"
        )
        return f"{what}; {limits}"


def _try_in_child(function) -> str | None:
    """Run ``function`` in a forked child; None when it worked, else the error it raised."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read)
        message = b""
        try:
            function()
        except Exception as exc:
            message = str(exc).encode()[:500] or type(exc).__name__.encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    os.waitpid(pid, 0)
    return message or None


def _namespaces_work(*, user: bool) -> str | None:
    def attempt():
        uid, gid = os.getuid(), os.getgid()
        flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC
        _unshare(flags | (CLONE_NEWUSER if user else 0))
        if user:
            _map_user(uid, gid, inside=0)
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _loopback_up()
        if PIVOT_ROOT.get(platform.machine()) is None:
            raise SandboxError(errno.ENOSYS, f"pivot_root is not known on {platform.machine()}")

    return _try_in_child(attempt)


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path in the hierarchy of ``controller`` ("" for v2)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if (controller == "" and number == "0") or controller in controllers.split(","):
            return path
    return None


def cgroup_roots() -> tuple[str | None, dict[str, Path]]:
    """The cgroup interface usable here and the folder under which to create sandboxes' groups."""
    base = Path("/sys/fs/cgroup")
    if os.geteuid() != 0:
        return None, {}
    v2 = base / "cgroup.controllers"
    if v2.exists() and "memory" in v2.read_text().split():
        parent = base / (_own_cgroup("") or "/").lstrip("/")
        return "v2", {"": parent / "tlcourse-grade"}
    roots = {}
    for controller in ("memory", "pids"):
        path = _own_cgroup(controller)
        if path is not None and (base / controller).is_dir():
            roots[controller] = base / controller / path.lstrip("/") / "tlcourse-grade"
    if "memory" in roots:
        return "v1", roots
    return None, {}


_PROBED: Isolation | None = None


def probe(*, refresh: bool = False) -> Isolation:
    """Find out which isolation this machine allows (cached; ``TLCOURSE_GRADE_ISOLATION`` can lower it).

    Examples
    --------
    >>> isolation = probe()
    >>> isolation.mode in ("root", "userns", "none")
    True
    """
    global _PROBED
    if _PROBED is not None and not refresh:
        return _PROBED
    missing: list[str] = []
    wanted = os.environ.get("TLCOURSE_GRADE_ISOLATION", "").strip().lower() or "best"
    mode = "none"
    if sys.platform != "linux":
        missing.append(f"namespaces: not on Linux ({sys.platform}), so student code can use the network")
    elif wanted == "none":
        missing.append("namespaces: switched off by TLCOURSE_GRADE_ISOLATION=none")
    else:
        if os.geteuid() == 0 and wanted in ("best", "root"):
            error = _namespaces_work(user=False)
            if error is None:
                mode = "root"
            else:
                missing.append(f"namespaces as root failed ({error})")
        elif wanted in ("best", "root"):
            missing.append(
                "an unprivileged uid per submission: the grader is not running as root, so student "
                "code runs as your user (inside a user namespace when possible)"
            )
        if mode == "none":
            error = _namespaces_work(user=True)
            if error is None:
                mode = "userns"
                if os.geteuid() == 0:
                    missing.append(
                        f"an unprivileged uid per submission: TLCOURSE_GRADE_ISOLATION={wanted} asks for a user "
                        "namespace, so student code runs as the grader's uid (mapped, without capabilities)"
                    )
            else:
                missing.append(
                    f"namespaces: user namespaces are not available ({error}); student code can use "
                    "the network and read what your user can read (try running the grader as root)"
                )
    cgroup, _ = cgroup_roots()
    if cgroup is None:
        missing.append(
            "cgroups: "
            + ("not running as root" if os.geteuid() != 0 else "no writable memory cgroup found")
            + "; memory is limited with RLIMIT_DATA (reserved, not resident memory) and processes with RLIMIT_NPROC"
        )
    _PROBED = Isolation(mode=mode, cgroup=cgroup, missing=tuple(missing))
    return _PROBED


# =========================================================================== the launcher
def _map_user(uid: int, gid: int, *, inside: int) -> None:
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{inside} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{inside} {gid} 1")


def _bind(source: str, root: str, *, writable: bool = False, inside: str | None = None) -> None:
    target = root + (inside or source)
    if os.path.islink(source) and not writable:
        # /bin -> usr/bin on merged-/usr systems: the same link inside.
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(source), target)
        return
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            Path(target).touch()
    _mount(source, target, None, MS_BIND | MS_REC)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (0 if writable else MS_RDONLY)
    try:
        _mount(None, target, None, flags)
    except SandboxError:
        # In a user namespace the source's own flags (nodev, noexec) are locked: keep them.
        _mount(None, target, None, flags | MS_NODEV)


def _covered(path: str, done: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in done)


def _build_root(spec: dict) -> None:
    """In the new mount namespace: a tmpfs root with only what the kernel needs, then pivot into it."""
    root = spec["root"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755")
    # A private /tmp first, so that what is bound read-only below it (a checkout or venv under /tmp) shows.
    scratch = f"size={spec['tmpfs_bytes']},mode=1777"
    os.makedirs(root + "/tmp", exist_ok=True)
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, scratch)
    done: list[str] = []
    for path in sorted(dict.fromkeys(spec["read_only"]), key=len):
        if not os.path.lexists(path) or _covered(path, done):
            continue
        _bind(path, root)
        done.append(path)
    for item in spec.get("overlays", []):
        lower, target = item["lower"], root + item["lower"]
        os.makedirs(target, exist_ok=True)
        options = f"lowerdir={lower},upperdir={item['upper']},workdir={item['work']}"
        try:
            _mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, options)
        except SandboxError:
            _bind(lower, root)
            continue
        if spec.get("uid") is not None:
            for folder, _dirs, _files in os.walk(target):
                # Directories (not files) become the student's, so new files can be written;
                # the change is copied up into the private upper layer only.
                os.chown(folder, spec["uid"], spec["gid"])
    # /proc of the new PID namespace, a minimal /dev, a private /dev/shm.
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(root + "/dev", exist_ok=True)
    _mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID, "size=64k,mode=0755")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _bind(f"/dev/{name}", root, writable=True)
    os.symlink("/proc/self/fd", root + "/dev/fd")
    os.makedirs(root + "/dev/shm", exist_ok=True)
    _mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, scratch)
    try:
        os.makedirs(root + "/sys", exist_ok=True)
        _mount("sysfs", root + "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except SandboxError:
        pass  # TensorFlow reads the CPU count elsewhere too
    # The working folder (a size-limited tmpfs with the submission's files) and the socket folder.
    workdir = spec["workdir"]
    os.makedirs(root + workdir, exist_ok=True)
    _mount("tmpfs", root + workdir, "tmpfs", MS_NOSUID | MS_NODEV, f"size={spec['tmpfs_bytes']},mode=0700")
    _copy_files(spec.get("files_from"), root + workdir, spec)
    _bind(spec["ipc_dir"], root, writable=True)
    os.chdir(root)
    os.makedirs(".old-root", exist_ok=True)
    _pivot_root(".", ".old-root")
    os.chdir("/")
    _umount("/.old-root")
    os.rmdir("/.old-root")
    _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _copy_files(source: str | None, target: str, spec: dict) -> None:
    uid, gid = spec.get("uid"), spec.get("gid")
    if source and os.path.isdir(source):
        for name in os.listdir(source):
            path = os.path.join(source, name)
            if name.endswith(".ipynb") or not os.path.isfile(path) or os.path.islink(path):
                continue
            shutil.copyfile(path, os.path.join(target, name))
    for item in spec.get("seed_files", []):
        destination = os.path.join(target, item["name"])
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copyfile(item["source"], destination)
    if uid is not None:
        for folder, dirs, files in os.walk(target):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.chown(name, uid, gid)


def _set_limits(spec: dict) -> None:
    import resource

    limits = spec["limits"]
    pairs = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, limits["file_bytes"]),
        (resource.RLIMIT_NOFILE, limits["open_files"]),
    ]
    if spec.get("uid") is not None or spec["mode"] != "root":
        pairs.append((resource.RLIMIT_NPROC, limits["processes"]))
    if limits.get("data_bytes"):
        pairs.append((resource.RLIMIT_DATA, limits["data_bytes"]))
    for which, value in pairs:
        try:
            _soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def _become_student(spec: dict) -> None:
    """Drop to the student's identity; after this the process cannot undo the sandbox."""
    uid, gid = spec.get("uid"), spec.get("gid")
    if spec["mode"] == "root" and uid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    elif spec["mode"] == "userns":
        # A nested user namespace whose only uid (1000) is ours: no capabilities over the mounts.
        _unshare(CLONE_NEWUSER)
        _map_user(0, 0, inside=1000)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def _exec_kernel(spec: dict, command: list[str]) -> None:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)
    _set_limits(spec)
    _become_student(spec)
    os.chdir(spec["workdir"])
    os.execvpe(command[0], command, spec["env"])


def _init(spec: dict, command: list[str], lifeline: int) -> None:  # pragma: no cover - runs as PID 1
    """PID 1 of the sandbox: build the root, start the kernel, reap orphans, end with the kernel."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # getppid() is 0 across the PID namespace: the launcher's end of a pipe says it is alive.
    if select.select([lifeline], [], [], 0)[0]:
        os._exit(1)
    os.close(lifeline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are for the kernel, which gets them too
    try:
        _loopback_up()
        _build_root(spec)
    except Exception as exc:
        print(f"tlcourse sandbox: could not build the sandbox: {exc}", file=sys.stderr, flush=True)
        os._exit(70)
    kernel = os.fork()
    if kernel == 0:
        try:
            _exec_kernel(spec, command)
        finally:
            os._exit(71)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(kernel, signal.SIGTERM))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == kernel:
            # Leaving kills every other process of the namespace (forks, daemons).
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _prepare_connection_file(spec: dict, command: list[str]) -> list[str]:
    """The kernel cannot read the grader's connection file: give it its own copy in the socket folder."""
    if "-f" not in command:
        return command
    index = command.index("-f") + 1
    info = json.loads(Path(command[index]).read_text())
    copy = Path(spec["ipc_dir"]) / "connection.json"
    copy.write_text(json.dumps(info))
    if spec.get("uid") is not None and spec["mode"] == "root":
        os.chown(copy, spec["uid"], spec["gid"])
    copy.chmod(0o600)
    return [*command[:index], str(copy), *command[index + 1 :]]


def _join_cgroups(spec: dict) -> None:
    for folder in spec.get("cgroups", []):
        Path(folder, "cgroup.procs").write_text(str(os.getpid()))


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m tlcourse_tools.grading.sandbox SPEC.json -- COMMAND...", file=sys.stderr)
        return 64
    spec = json.loads(Path(argv[0]).read_text())
    if spec.get("log"):
        # The kernel's own stdout/stderr (not its cells', which go to the notebook) go to the grader's log.
        log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
    command = _prepare_connection_file(spec, argv[2:])
    _join_cgroups(spec)
    if spec["mode"] == "none":
        _exec_kernel(spec, command)
    grader = os.getppid()
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    _unshare(flags | (CLONE_NEWUSER if spec["mode"] == "userns" else 0))
    if spec["mode"] == "userns":
        _map_user(uid, gid, inside=0)
    lifeline, keep = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the sandbox's PID 1
        os.close(keep)
        _init(spec, command, lifeline)
    os.close(lifeline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda *_: os.kill(child, signal.SIGKILL))
    # Wait for the sandbox, and take it down if the grader dies (a killed Dask worker). Polling,
    # because no thread can start after unshare(CLONE_NEWPID).
    while True:
        try:
            pid, status = os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            return 0
        if pid == child:
            return os.waitstatus_to_exitcode(status)
        if os.getppid() != grader:
            os.kill(child, signal.SIGKILL)
            return 1
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
