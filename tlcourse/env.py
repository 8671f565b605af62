"""The environment: profiles and budgets, devices, precision, strategy, online/offline, seeds.

``tlcourse.setup()`` is the first code cell of every lesson. It decides everything
that depends on the machine in one place, so that lessons only read the result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlcourse.errors import ConfigError, DependencyError, unknown_name

__all__ = [
    "Budget",
    "Course",
    "DeviceInfo",
    "PROFILES",
    "cache_dir",
    "choose_precision",
    "choose_profile",
    "choose_strategy",
    "current",
    "data_dir",
    "last_setup",
    "is_offline",
    "reseed",
    "say",
    "setup",
    "unreachable",
]

MIN_TENSORFLOW = (2, 16)
# Where the ImageNet weights (keras.applications) and tensorflow-datasets' mirror live.
PROBE_HOSTS = ("storage.googleapis.com",)
PROBE_TIMEOUT = 1.5  # seconds for one decision, all hosts probed in parallel (the goal is ≤ 2 s)


# --------------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Budget:
    """How much work a lesson may do. Lessons read these numbers, never the machine.

    Attributes
    ----------
    image_size : int
        Side of the square images fed to ImageNet bases.
    train_per_class, eval_per_class : int or None
        Caps on examples per class for training and for validation/test (None: all).
    epochs, fine_tune_epochs : int
        Epochs for a head (or a model from scratch) and for the fine-tuning stage.
    batch_size : int
        Global batch size (tlcourse scales it with the number of replicas).
    seeds : tuple of int
        Seeds for experiments that report mean ± std.
    """

    image_size: int
    train_per_class: int | None
    eval_per_class: int | None
    epochs: int
    fine_tune_epochs: int
    batch_size: int
    seeds: tuple[int, ...]

    def replace(self, **changes: Any) -> Budget:
        """Return a copy with some fields changed (``budget.replace(epochs=2)``)."""
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Budget] = {
    # GPU/TPU/Colab: real data at native sizes, real epochs.
    "full": Budget(224, None, None, 10, 5, 64, (0, 1, 2)),
    # A laptop: real data, smaller images, subsets and epochs.
    "cpu": Budget(160, 300, 100, 5, 3, 32, (0, 1, 2)),
    # Tests: offline stand-ins, tiny budgets, deterministic.
    "ci": Budget(96, 60, 40, 3, 2, 32, (0, 1, 2)),
}


# --------------------------------------------------------------------------- small helpers
def _env_flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(
        f"{name}={os.environ[name]!r} is not a yes/no value.",
        hint=f"Use {name}=1 to switch it on or {name}=0 (or unset it) to switch it off.",
    )


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a whole number.", hint=f"Set {name} to e.g. 42, or unset it."
        ) from None


def say(message: str) -> None:
    """Print one visible line from tlcourse (used for offline fallbacks and similar news)."""
    print(f"ℹ️  tlcourse: {message}", flush=True)


def cache_dir(*parts: str) -> Path:
    """The folder where tlcourse keeps converted weights, datasets and features.

    ``TLCOURSE_CACHE`` overrides the default ``~/.cache/tlcourse``; the folder is created.
    """
    root = os.environ.get("TLCOURSE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "tlcourse"
    )
    path = Path(root).expanduser().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """The folder where datasets are kept, created if needed.

    ``TLCOURSE_DATA_DIR`` (or ``setup(data_dir=...)``) names it, e.g. a folder on a mounted Google
    Drive so that downloads outlive a Colab session; the default is ``cache_dir("data")``.
    tensorflow-datasets keeps its data in the ``tfds`` sub-folder of a folder named this way.
    """
    raw = os.environ.get("TLCOURSE_DATA_DIR", "").strip()
    if not raw:
        return cache_dir("data")
    path = Path(raw).expanduser()
    if path.is_relative_to("/content/drive") and not Path("/content/drive/MyDrive").is_dir():
        raise ConfigError(
            f"TLCOURSE_DATA_DIR={raw!r} is on Google Drive, which is not mounted.",
            hint='Run `from google.colab import drive; drive.mount("/content/drive")` first.',
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


_data_dir = data_dir  # setup() has a parameter of that name


# --------------------------------------------------------------------------- online or offline
_answered: dict[str, bool] = {}  # "host" or "host:port" -> whether it answered, once per session


def forced_offline() -> bool | None:
    """What ``TLCOURSE_OFFLINE`` forces: True (offline), False (online), None (unset: probe)."""
    return _env_flag("TLCOURSE_OFFLINE") if os.environ.get("TLCOURSE_OFFLINE", "").strip() else None


def _answers(host: str, timeout: float) -> bool:
    name, _, port = host.partition(":")
    try:
        with socket.create_connection((name, int(port or 443)), timeout=timeout):
            return True
    except OSError:
        return False


def unreachable(hosts, *, timeout: float = PROBE_TIMEOUT) -> list[str]:
    """The hosts (``"name"`` for port 443, or ``"name:port"``) that do not answer a TCP connection.

    Each host is probed once per session, all in parallel, within ``timeout`` seconds together.
    ``TLCOURSE_OFFLINE=1`` makes every host unreachable and ``TLCOURSE_OFFLINE=0`` none, without
    any network call.

    Examples
    --------
    >>> unreachable([])
    []
    """
    hosts = list(dict.fromkeys(hosts))
    forced = forced_offline()
    if forced is not None:
        return hosts if forced else []
    new = [h for h in hosts if h not in _answered]
    found: dict[str, bool] = {}
    threads = [
        threading.Thread(target=lambda h=h: found.update({h: _answers(h, timeout)}), daemon=True) for h in new
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    _answered.update({h: found.get(h, False) for h in new})
    return [h for h in hosts if not _answered[h]]


class NetworkAttemptError(ConfigError):
    """Raised by the socket guard when code tries to reach the network while offline is forced."""


_LOOPBACK_PREFIXES = ("127.", "::1", "localhost", "0.0.0.0")


def install_socket_guard() -> None:
    """Make any connection to a non-loopback address raise :class:`NetworkAttemptError`.

    ``make test`` switches it on (``TLCOURSE_SOCKET_GUARD=1``) in the test process and in
    every notebook kernel, which proves that ``TLCOURSE_OFFLINE=1`` attempts no network call.
    """
    if getattr(socket.socket.connect, "_tlcourse_guard", False):
        return
    original_connect = socket.socket.connect
    original_create = socket.create_connection

    def _check(address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and (host.startswith(_LOOPBACK_PREFIXES) or host.startswith("/")):
            return
        if not isinstance(address, tuple):  # unix sockets
            return
        raise NetworkAttemptError(
            f"A network connection to {host!r} was attempted while TLCOURSE_OFFLINE=1.",
            hint="Offline code paths must not touch the network; this is a bug in tlcourse or the lesson.",
        )

    def guarded_connect(self, address):
        _check(address)
        return original_connect(self, address)

    def guarded_create(address, *args, **kwargs):
        _check(address)
        return original_create(address, *args, **kwargs)

    guarded_connect._tlcourse_guard = True
    socket.socket.connect = guarded_connect
    socket.create_connection = guarded_create


def is_offline(*, refresh: bool = False) -> bool:
    """Whether tlcourse should use its offline stand-ins.

    ``TLCOURSE_OFFLINE=1`` forces offline and guarantees no network attempt;
    ``TLCOURSE_OFFLINE=0`` forces online. Otherwise offline when none of ``PROBE_HOSTS``
    (where the ImageNet weights and tensorflow-datasets' mirror live) answers within
    ``PROBE_TIMEOUT`` seconds; the answer is kept for the session (``refresh=True`` asks again).
    Each dataset's own download host is checked when the dataset is first loaded.
    """
    if refresh:
        for host in PROBE_HOSTS:
            _answered.pop(host, None)
    return len(unreachable(PROBE_HOSTS)) == len(PROBE_HOSTS)


def _network_line(offline: bool) -> str:
    forced = forced_offline()
    if forced is not None:
        return f"{'offline' if forced else 'online'} (TLCOURSE_OFFLINE={int(forced)})"
    if offline and all(_answered.get(host) is False for host in PROBE_HOSTS):
        return f"offline ({', '.join(PROBE_HOSTS)} did not answer: stand-ins from installed packages)"
    if offline:
        return "offline (a download failed: stand-ins from installed packages)"
    return "online (each dataset's host is checked on first use)"


# --------------------------------------------------------------------------- devices
@dataclass(frozen=True)
class DeviceInfo:
    """What tlcourse needs to know about one accelerator (or the CPU)."""

    kind: str  # "CPU", "GPU" or "TPU"
    name: str = ""
    compute_capability: tuple[int, int] | None = None


def detect_devices() -> list[DeviceInfo]:
    """The machine's accelerators as :class:`DeviceInfo` (the CPU when there are none)."""
    import tensorflow as tf

    devices = []
    for kind in ("TPU", "GPU"):
        for dev in tf.config.list_physical_devices(kind):
            details = {}
            if kind == "GPU":
                try:
                    details = tf.config.experimental.get_device_details(dev)
                except Exception:  # details are best-effort; a GPU without them is still a GPU
                    details = {}
            devices.append(
                DeviceInfo(kind, details.get("device_name", dev.name), details.get("compute_capability"))
            )
    return devices or [DeviceInfo("CPU", platform.processor() or platform.machine())]


PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def choose_precision(devices: list[DeviceInfo], override: str = "auto") -> str:
    """The mixed-precision policy for these devices.

    ``mixed_bfloat16`` on TPUs and on GPUs of compute capability ≥ 8.0, ``mixed_float16``
    on GPUs ≥ 7.0, ``float32`` otherwise (CPU, older GPUs). ``override`` wins unless "auto".

    Examples
    --------
    >>> choose_precision([DeviceInfo("GPU", "Tesla T4", (7, 5))])
    'mixed_float16'
    >>> choose_precision([DeviceInfo("CPU")])
    'float32'
    """
    if override != "auto":
        if override not in PRECISIONS:
            raise unknown_name("precision", override, (*PRECISIONS, "auto"))
        return override
    kinds = {d.kind for d in devices}
    if "TPU" in kinds:
        return "mixed_bfloat16"
    gpus = [d for d in devices if d.kind == "GPU"]
    if gpus:
        capabilities = [d.compute_capability or (0, 0) for d in gpus]
        lowest = min(capabilities)
        if lowest >= (8, 0):
            return "mixed_bfloat16"
        if lowest >= (7, 0):
            return "mixed_float16"
    return "float32"


def choose_strategy(devices: list[DeviceInfo], *, logical_devices: list[str] | None = None):
    """The ``tf.distribute`` strategy: TPUStrategy on a TPU, MirroredStrategy on several GPUs.

    ``logical_devices`` names the devices to mirror over explicitly (tests pass two
    logical CPUs); otherwise the default strategy is used on one device.
    """
    import tensorflow as tf

    kinds = [d.kind for d in devices]
    if "TPU" in kinds:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if logical_devices:
        return tf.distribute.MirroredStrategy(logical_devices)
    if kinds.count("GPU") > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def in_colab() -> bool:
    """Whether this runs in Google Colab."""
    return "google.colab" in sys.modules or bool(os.environ.get("COLAB_RELEASE_TAG"))


def under_test() -> bool:
    return "PYTEST_CURRENT_TEST" in os.environ or _env_flag("TLCOURSE_UNDER_TEST")


def choose_profile(devices: list[DeviceInfo], override: str | None = None) -> str:
    """``full`` on a GPU/TPU, ``cpu`` on a CPU, ``ci`` under tests; ``TLCOURSE_PROFILE`` wins.

    Examples
    --------
    >>> choose_profile([DeviceInfo("GPU", "T4", (7, 5))], override="cpu")
    'cpu'
    """
    name = override or os.environ.get("TLCOURSE_PROFILE", "").strip() or None
    if name is not None:
        if name not in PROFILES:
            raise unknown_name("profile", name, PROFILES)
        return name
    if under_test():
        return "ci"
    if any(d.kind in ("GPU", "TPU") for d in devices):
        return "full"
    return "cpu"


# --------------------------------------------------------------------------- versions
def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_versions() -> dict[str, str]:
    """Raise a clear error for Keras 2 legacy mode or an unsupported TensorFlow/Keras."""
    if _env_flag("TF_USE_LEGACY_KERAS"):
        raise ConfigError(
            "TF_USE_LEGACY_KERAS=1 switches TensorFlow to Keras 2 (tf_keras); this course is Keras 3.",
            hint="Unset TF_USE_LEGACY_KERAS (or set it to 0) and restart the kernel.",
        )
    try:
        import keras
        import tensorflow as tf
    except ImportError as exc:
        raise DependencyError(
            f"{exc.name or 'tensorflow'} is not installed.",
            hint="Run `make lab` (or `pip install -e .`) to install the course's dependencies.",
        ) from None
    if _version_tuple(tf.__version__)[:2] < MIN_TENSORFLOW:
        raise DependencyError(
            f"TensorFlow {tf.__version__} is too old; the course needs 2.16 or newer (Keras 3).",
            hint="pip install -U 'tensorflow>=2.16'",
        )
    if _version_tuple(keras.__version__)[0] != 3:
        raise DependencyError(
            f"Keras {keras.__version__} is installed; the course is written for Keras 3.",
            hint="pip install 'keras>=3.3,<4'",
        )
    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__}


@contextlib.contextmanager
def _native_stderr_hidden():
    """Send what C++ code writes to file descriptor 2 to /dev/null for the duration of the block.

    TensorFlow 2.20+ logs through absl before absl is initialised, which ignores TF_CPP_MIN_LOG_LEVEL
    ("oneDNN custom operations are on", "failed call to cuInit"): in a notebook those lines land in the
    first cell as red stderr. Python exceptions are unaffected (they are not written to the descriptor).
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (some embedded interpreters): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ and Python log noise out of the notebook.

    ``TF_CPP_MIN_LOG_LEVEL=0`` (set before ``import tlcourse``) keeps every native log line visible.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    hide = "tensorflow" not in sys.modules and os.environ["TF_CPP_MIN_LOG_LEVEL"] != "0"
    with _native_stderr_hidden() if hide else contextlib.nullcontext():
        import tensorflow as tf

        tf.config.list_physical_devices()  # initialises the device plugins, which log too
    tf.get_logger().setLevel("ERROR")


# --------------------------------------------------------------------------- the course
@dataclass
class Course:
    """What ``setup()`` decided. Lessons read ``course.budget`` and call ``course.record``."""

    profile: str
    budget: Budget
    offline: bool
    colab: bool
    devices: list[DeviceInfo]
    precision: str
    strategy: Any
    seed: int
    versions: dict[str, str]
    lesson: str | None = None
    records: dict[str, Any] = field(default_factory=dict)

    @property
    def replicas(self) -> int:
        return getattr(self.strategy, "num_replicas_in_sync", 1)

    @property
    def device(self) -> str:
        first = self.devices[0]
        count = len(self.devices)
        label = first.name or first.kind
        return f"{count} × {first.kind} ({label})" if count > 1 else f"{first.kind} ({label})"

    def record(self, key: str, value: Any) -> Any:
        """Keep a result the lesson computed, so that tests can assert the lesson's claims.

        Values must be JSON-serialisable (numbers are stored as plain floats/ints).
        Written to ``$TLCOURSE_RECORD_DIR/<lesson>.json`` (default: the cache's
        ``records`` folder). Returns ``value`` so it can be used inline.
        """
        self.records[key] = _plain(value)
        folder = Path(os.environ.get("TLCOURSE_RECORD_DIR") or cache_dir("records"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.lesson or 'scratch'}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.records, indent=2, sort_keys=True))
        tmp.replace(path)
        return value

    def report(self) -> str:
        strategy = type(self.strategy).__name__
        datasets = f"  ·  datasets {data_dir()}" if os.environ.get("TLCOURSE_DATA_DIR", "").strip() else ""
        b = self.budget
        lines = [
            f"tlcourse {_package_version()}  ·  Python {self.versions['python']}"
            f"  ·  TensorFlow {self.versions['tensorflow']}  ·  Keras {self.versions['keras']}",
            f"device    {self.device}{'  ·  Colab' if self.colab else ''}",
            f"precision {self.precision}  ·  strategy {strategy} ({self.replicas} replica"
            f"{'s' if self.replicas != 1 else ''})",
            f"profile   {self.profile}: images {b.image_size}px, ≤{b.train_per_class or 'all'} train/class,"
            f" {b.epochs}+{b.fine_tune_epochs} epochs, batch {b.batch_size}, seeds {list(b.seeds)}",
            f"data      {_network_line(self.offline)}{datasets}  ·  cache {cache_dir()}",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Course(lesson={self.lesson!r}, profile={self.profile!r}, offline={self.offline})"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("tlcourse")
    except Exception:
        return "dev"


_current: Course | None = None


def last_setup() -> Course | None:
    """The course made by the last ``setup()`` call, or None before the first one."""
    return _current


def current() -> Course:
    """The course of the last ``setup()``; before any, plain defaults with no side effects.

    The defaults are what the helpers need to run outside a lesson: the budget of the profile
    ``TLCOURSE_PROFILE`` names (else ``cpu``), TensorFlow's default strategy and the precision policy
    as it is. Nothing is probed, seeded or set: only ``setup()`` changes global state.

    Examples
    --------
    >>> current().strategy is not None
    True
    """
    if _current is not None:
        return _current
    import keras
    import tensorflow as tf

    name = os.environ.get("TLCOURSE_PROFILE", "").strip() or "cpu"
    if name not in PROFILES:
        raise unknown_name("profile", name, PROFILES)
    return Course(
        profile=name,
        budget=PROFILES[name],
        offline=_env_flag("TLCOURSE_OFFLINE"),
        colab=in_colab(),
        devices=[],
        precision=keras.mixed_precision.global_policy().name,
        strategy=tf.distribute.get_strategy(),
        seed=_env_int("TLCOURSE_SEED", 42),
        versions={},
    )


def setup(
    lesson: str | None = None,
    *,
    profile: str | None = None,
    seed: int | None = None,
    precision: str = "auto",
    deterministic: bool = False,
    verbose: bool = True,
    devices: list[DeviceInfo] | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Course:
    """Prepare TensorFlow for a lesson and return the :class:`Course`.

    Parameters
    ----------
    lesson : str, optional
        The lesson's number ("01"); names the file that ``course.record`` writes.
    profile : {"full", "cpu", "ci"}, optional
        Overrides the automatic choice (and ``TLCOURSE_PROFILE``).
    seed : int, optional
        Seeds Python, NumPy and TensorFlow (default ``TLCOURSE_SEED`` or 42).
    precision : {"auto", "float32", "mixed_float16", "mixed_bfloat16"}
        The Keras mixed-precision policy; "auto" picks by device.
    deterministic : bool
        Turn on TensorFlow's op determinism (slower, bit-for-bit repeatable).
    verbose : bool
        Print the one-screen report.
    devices : list of DeviceInfo, optional
        Use these instead of detecting (for tests and what-ifs).
    data_dir : str or path, optional
        Keep datasets (tensorflow-datasets' downloads included) in this folder, e.g. on a mounted
        Google Drive; sets ``TLCOURSE_DATA_DIR`` for the session.

    Examples
    --------
    >>> course = setup("00", verbose=False)
    >>> course.profile in PROFILES
    True
    """
    global _current
    quiet_tensorflow()
    versions = check_versions()
    import keras
    import tensorflow as tf

    seed = _env_int("TLCOURSE_SEED", 42) if seed is None else seed
    if data_dir is not None:
        os.environ["TLCOURSE_DATA_DIR"] = str(Path(data_dir).expanduser())
        _data_dir()  # a folder that cannot be used fails here, with its fix
    offline = is_offline()
    devices = devices if devices is not None else detect_devices()
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth must be set before first use
            pass
    chosen_precision = choose_precision(devices, precision)
    keras.mixed_precision.set_global_policy(chosen_precision)
    strategy = choose_strategy(devices)
    keras.utils.set_random_seed(seed)
    if deterministic or _env_flag("TLCOURSE_DETERMINISTIC"):
        tf.config.experimental.enable_op_determinism()
    colab = in_colab()
    if colab:
        try:
            from google.colab import output  # type: ignore[import-not-found]

            output.enable_custom_widget_manager()
        except Exception:  # widgets then fall back to static output; not worth failing a lesson
            pass
    name = choose_profile(devices, profile)
    course = Course(
        profile=name,
        budget=PROFILES[name],
        offline=offline,
        colab=colab,
        devices=devices,
        precision=chosen_precision,
        strategy=strategy,
        seed=seed,
        versions=versions,
        lesson=lesson,
    )
    _current = course
    if verbose:
        print(course.report(), flush=True)
    return course


def reseed(seed: int) -> None:
    """Seed Python, NumPy, Keras and TensorFlow like ``keras.utils.set_random_seed``, keeping the compiled steps.

    ``keras.utils.set_random_seed(seed)`` ends with ``tf.random.set_seed(seed)``, which also empties
    TensorFlow's cache of instantiated functions: the next call of *every* model traced so far is
    prepared again, about 3 s for MiniLM's training step on a CPU (lesson 09), often more than a short run
    itself. Lesson 01 shows the cost. ``reseed`` sets the same seeds and leaves the cache alone, so a
    Keras model built and trained after ``reseed(s)`` gets exactly what it would after
    ``set_random_seed(s)``: the same initial weights, dropout masks, augmentations and ``tf.data`` shuffle
    orders. The one difference: TensorFlow's *stateful* random ops that already ran (``tf.random.uniform``
    called eagerly, without a seed) continue their sequence; Keras 3 does not use them.

    Parameters
    ----------
    seed : int
        0 ≤ seed < 2**32, as NumPy requires.

    Raises
    ------
    ConfigError
        If ``seed`` is not such an integer.

    Examples
    --------
    >>> import keras
    >>> reseed(3)
    >>> dense = keras.layers.Dense(2)
    >>> dense.build((None, 4))
    >>> keras.utils.set_random_seed(3)
    >>> twin = keras.layers.Dense(2)
    >>> twin.build((None, 4))
    >>> bool((dense.kernel.numpy() == twin.kernel.numpy()).all())
    True
    """
    import random

    import numpy as np

    from tlcourse import introspect

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ConfigError(
            f"reseed: the seed must be an integer from 0 to 2**32 - 1, not {seed!r}.",
            hint="Pass a whole number, e.g. one of course.budget.seeds.",
        )
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    introspect.set_global_seeds(seed)
