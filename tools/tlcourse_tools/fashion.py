"""Fashion-MNIST for the tests: ``tlcourse test-env`` gets it, and when it cannot, the tests that need it
are skipped with one line that names the fix, never a wall of failures.

Where the files come from, first that applies (:func:`plan` decides, :func:`ensure` acts):

1. already there: ``TLCOURSE_FASHION_MNIST_DIR``, Debian's folder, or ``tlcourse.env.data_dir()``'s
   ``fashion-mnist`` folder (the folders ``tlcourse.data`` reads);
2. Debian's package ``dataset-fashion-mnist`` when running as root with apt (and no folder was chosen
   with ``TLCOURSE_FASHION_MNIST_DIR``);
3. the same four files from the URLs ``keras.datasets.fashion_mnist`` uses, when online, into the
   data folder (or the chosen folder), each checked against the SHA-256 of its content;
4. otherwise nothing, and one line saying how to get them.

:mod:`tlcourse_tools.pytest_fashion` (a pytest plugin the root ``conftest.py`` loads) turns a test's or a
notebook cell's failure caused by the missing files into a skip, and prints one summary line.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
# SHA-256 of each file's uncompressed content (the same in Debian's copy and keras.datasets' copy,
# whose gzip headers differ).
FILES = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# What tlcourse.data says when the files are missing (load's DataError, fetch's OfflineError).
MISSING = ("Fashion-MNIST's files are missing", "Cannot download 'fashion_mnist'")
FIX = f"sudo apt-get install {DEBIAN_PACKAGE}, or run `tlcourse test-env` with internet access"
SKIP_REASON = f"Fashion-MNIST is not installed ({FIX})"


@dataclasses.dataclass(frozen=True)
class Machine:
    """What decides where Fashion-MNIST can come from."""

    root: bool
    apt: bool
    online: bool


def this_machine(*, timeout: float = 3.0) -> Machine:
    """This machine: running as root? ``apt-get`` present? ``storage.googleapis.com`` reachable?"""
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=timeout).close()
        online = True
    except OSError:
        online = False
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return Machine(root=root, apt=shutil.which("apt-get") is not None, online=online)


def folder() -> Path:
    """Where ``test-env`` looks first and puts the files, one of the folders ``tlcourse.data`` reads:
    ``TLCOURSE_FASHION_MNIST_DIR``, else Debian's folder when it exists, else ``data_dir()/fashion-mnist``."""
    chosen = os.environ.get("TLCOURSE_FASHION_MNIST_DIR")
    if chosen:
        return Path(chosen)
    if DEBIAN_DIR.is_dir():
        return DEBIAN_DIR
    return _data_folder()


def present(path: Path) -> bool:
    return all((path / name).is_file() for name in FILES)


def plan(machine: Machine, *, have_files: bool, folder_chosen: bool = False) -> list[str]:
    """The ways to try, in order: ``[]`` (nothing to do), ``"apt"``, ``"download"``; ``["skip"]`` when none.

    Examples
    --------
    >>> plan(Machine(root=True, apt=True, online=True), have_files=False)
    ['apt', 'download']
    >>> plan(Machine(root=False, apt=True, online=True), have_files=False)
    ['download']
    >>> plan(Machine(root=True, apt=True, online=False), have_files=False, folder_chosen=True)
    ['skip']
    >>> plan(Machine(root=False, apt=False, online=False), have_files=True)
    []
    """
    if have_files:
        return []
    ways = []
    if machine.root and machine.apt and not folder_chosen:  # apt installs into Debian's folder only
        ways.append("apt")
    if machine.online:
        ways.append("download")
    return ways or ["skip"]


def _apt_install(run: Callable = subprocess.run) -> bool:
    quiet = {"capture_output": True, "text": True, "env": dict(os.environ, DEBIAN_FRONTEND="noninteractive")}
    install = ["apt-get", "install", "-y", "-qq", DEBIAN_PACKAGE]
    if run(install, **quiet).returncode == 0:
        return True
    run(["apt-get", "update", "-qq"], **quiet)  # a fresh machine has no package lists yet
    return run(install, **quiet).returncode == 0


def _content_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download(target: Path, *, fetch: Callable[[str, Path], None] | None = None) -> None:
    """The four files from keras.datasets' URLs into ``target``, each verified before it is kept.

    Raises ``ValueError`` when a file's content does not match its checksum (nothing is kept then).
    """
    fetch = fetch or (lambda url, path: urllib.request.urlretrieve(url, path))  # noqa: S310 (fixed https URL)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        for name, digest in FILES.items():
            part = Path(tmp) / name
            fetch(KERAS_URL + name, part)
            found = _content_sha256(part)
            if found != digest:
                raise ValueError(f"{name} from {KERAS_URL} has SHA-256 {found}, expected {digest}")
        for name in FILES:
            os.replace(Path(tmp) / name, target / name)


def ensure(
    *,
    machine: Machine | None = None,
    path: Path | None = None,
    run: Callable = subprocess.run,
    fetch: Callable[[str, Path], None] | None = None,
) -> tuple[bool, str]:
    """Get Fashion-MNIST where ``tlcourse.data`` reads it. Returns (ready, one line saying what happened)."""
    chosen = bool(os.environ.get("TLCOURSE_FASHION_MNIST_DIR"))  # apt cannot fill a folder chosen there
    path = path or folder()
    if present(path):
        return True, f"✅ Fashion-MNIST: {path}"
    machine = machine or this_machine()
    for way in plan(machine, have_files=False, folder_chosen=chosen):
        if way == "apt" and _apt_install(run) and present(DEBIAN_DIR):
            return True, f"✅ Fashion-MNIST: installed Debian's {DEBIAN_PACKAGE} ({DEBIAN_DIR})"
        if way == "download":
            target = path if chosen or path != DEBIAN_DIR else _data_folder()
            try:
                download(target, fetch=fetch)
            except (OSError, ValueError) as exc:
                why = f"⚠️  Fashion-MNIST could not be downloaded ({exc}), so the tests that need it will be skipped."
                return False, f"{why} Fix: {FIX}"
            return (
                True,
                f"✅ Fashion-MNIST: downloaded from keras.datasets' URLs, checksums verified ({target})",
            )
    return False, f"⚠️  Fashion-MNIST is missing, so the tests that need it will be skipped. Fix: {FIX}"


def _data_folder() -> Path:
    from tlcourse.env import data_dir

    return data_dir() / "fashion-mnist"
