"""Fixtures for the real-browser tests: headless Chromium (Playwright) driving a throwaway JupyterLab.

`make test-browser` installs both (the `browser` extra and Debian's ``chromium``); without them the tests
skip. Playwright's own browser download is never used: Chromium is the system one at ``/usr/bin/chromium``.
Everything runs under a temporary directory (notebook copies, Jupyter config, runtime and data dirs), so
neither the repository's notebooks nor the user's Jupyter settings are touched, and every process started
here (Chromium, the Jupyter server, its kernels) is checked to be gone at teardown.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
SERVER_START_SECONDS = 180
GRACE_SECONDS = 20

# JupyterLab settings for the run: no news/update prompt over the notebook, the notebook's kernel started
# without the "Select Kernel" dialog, and every cell attached to the DOM (the default windowing skips
# rendering cells outside the viewport).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
}


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _reap(processes: list, what: str) -> None:
    """Wait for ``processes`` to exit; kill and report any that outlive the grace period."""
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=GRACE_SECONDS)
    leftovers = []
    for p in alive:
        try:
            leftovers.append(f"{p.pid} {' '.join(p.cmdline()[:4])}")
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    assert not leftovers, f"{what} left processes behind (killed now): {leftovers}"


@pytest.fixture(scope="session")
def browser():
    """Headless system Chromium with a fresh profile, or a skip saying what is missing.

    At teardown the browser is closed, and neither Chromium nor Playwright's driver may leave a
    process behind.
    """
    import psutil

    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (`make test-browser` installs it)"
    )
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (`make test-browser` installs Debian's chromium)")
    before = {child.pid for child in psutil.Process().children()}
    with sync_api.sync_playwright() as playwright:
        drivers = [child for child in psutil.Process().children() if child.pid not in before]
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=120_000
        )
        yield browser
        spawned = drivers + [process for driver in drivers for process in _descendants(driver.pid)]
        browser.close()
    _reap(spawned, "Chromium or the Playwright driver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: its URL, token and the folder it serves."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path

    def api(self, path: str, *, method: str = "GET"):
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def tree_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """JupyterLab from this Python, headless, on a free port with a random token, in a temporary folder.

    The server and its kernels inherit the test environment (``TLCOURSE_OFFLINE=1``, the ``ci``
    profile, ``TLCOURSE_CACHE``) but get their own Jupyter/IPython directories, so the user's settings,
    kernels and workspaces do not leak in. At teardown the kernels are shut down through the REST API,
    the server's process group is terminated (killed after a grace period), and no process it started
    may survive.
    """
    base = tmp_path_factory.mktemp("lab")
    root, config, data, runtime = (base / name for name in ("root", "config", "data", "runtime"))
    for folder in (root, config, data, runtime):
        folder.mkdir()
    settings = config / "lab" / "user-settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    # The kernel is this very Python, whatever kernelspecs the machine has registered elsewhere.
    kernel = data / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        )
    )
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(data),
        JUPYTER_RUNTIME_DIR=str(runtime),
        IPYTHONDIR=str(base / "ipython"),
        TLCOURSE_RECORD_DIR=str(base / "records"),
    )
    for name in (
        "JUPYTER_PATH",
        "JUPYTER_CONFIG_PATH",
        "MPLBACKEND",
    ):  # MPLBACKEND: plots inline, as for a user
        env.pop(name, None)
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={config / 'lab' / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = base / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(url=f"http://127.0.0.1:{port}", token=token, root=root, process=process, log=log)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("/api/status")
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"JupyterLab did not answer in {SERVER_START_SECONDS} s:\n{server.log_tail()}"
                    )
                time.sleep(0.5)
        yield server
    finally:
        _stop(server)


def _stop(server: Lab) -> None:
    children = _descendants(server.process.pid)
    if server.process.poll() is None:
        try:
            for kernel in server.api("/api/kernels"):
                server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except (OSError, urllib.error.URLError, ValueError):
            pass  # the server is stopped below either way; leftovers are caught by _reap
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)
        except ProcessLookupError:
            pass
    _reap(children, "the Jupyter server (kernels)")
