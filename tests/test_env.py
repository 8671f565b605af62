import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from tlcourse import env
from tlcourse.env import PROFILES, DeviceInfo, choose_precision, choose_profile
from tlcourse.errors import ConfigError, DependencyError

CPU = DeviceInfo("CPU", "x86_64")
T4 = DeviceInfo("GPU", "Tesla T4", (7, 5))
A100 = DeviceInfo("GPU", "A100", (8, 0))
K80 = DeviceInfo("GPU", "Tesla K80", (3, 7))
TPU = DeviceInfo("TPU", "TPU v2")


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ([CPU], "float32"),
        ([K80], "float32"),
        ([T4], "mixed_float16"),
        ([A100], "mixed_bfloat16"),
        ([A100, T4], "mixed_float16"),  # the weakest GPU decides
        ([TPU], "mixed_bfloat16"),
    ],
)
def test_precision_follows_the_device(devices, expected):
    assert choose_precision(devices) == expected


def test_precision_override_and_bad_name():
    assert choose_precision([T4], "float32") == "float32"
    with pytest.raises(ConfigError, match="Unknown precision 'float16'") as info:
        choose_precision([T4], "float16")
    assert "mixed_float16" in info.value.hint


def test_profile_follows_the_device(monkeypatch):
    monkeypatch.delenv("TLCOURSE_PROFILE", raising=False)
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.setenv("TLCOURSE_UNDER_TEST", "0")
    assert choose_profile([CPU]) == "cpu"
    assert choose_profile([T4]) == "full"
    assert choose_profile([TPU]) == "full"
    monkeypatch.setenv("TLCOURSE_UNDER_TEST", "1")
    assert choose_profile([T4]) == "ci"
    monkeypatch.setenv("TLCOURSE_PROFILE", "cpu")
    assert choose_profile([T4]) == "cpu"


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("TLCOURSE_PROFILE", "gpu")
    with pytest.raises(ConfigError) as info:
        choose_profile([CPU])
    assert "Unknown profile 'gpu'" in str(info.value)
    assert all(name in info.value.hint for name in PROFILES)


@pytest.mark.parametrize(("name", "value"), [("TLCOURSE_OFFLINE", "maybe"), ("TLCOURSE_SEED", "forty-two")])
def test_malformed_variables_are_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        env.setup(verbose=False)
    assert name in str(info.value) and value in str(info.value)
    assert info.value.hint


def test_legacy_keras_is_refused(monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    with pytest.raises(ConfigError, match="Keras 2") as info:
        env.check_versions()
    assert "Unset TF_USE_LEGACY_KERAS" in info.value.hint


def test_old_tensorflow_is_refused(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(tf, "__version__", "2.15.1")
    with pytest.raises(DependencyError, match="2.15.1") as info:
        env.check_versions()
    assert "tensorflow>=2.16" in info.value.hint


def test_forced_offline_makes_no_network_attempt(monkeypatch):
    attempts = []
    monkeypatch.setattr(env, "_answers", lambda *a, **k: attempts.append(a) or True)
    monkeypatch.setattr(env, "_answered", {})
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    assert env.is_offline(refresh=True) is True
    assert env.unreachable(["download.microsoft.com", "ai.stanford.edu:80"]) == [
        "download.microsoft.com", "ai.stanford.edu:80"
    ]  # fmt: skip
    monkeypatch.setenv("TLCOURSE_OFFLINE", "0")
    assert env.is_offline(refresh=True) is False
    assert env.unreachable(["download.microsoft.com"]) == []
    assert attempts == []


def test_socket_guard_blocks_remote_and_allows_loopback():
    env.install_socket_guard()  # conftest installed it already; installing twice is harmless
    with pytest.raises(env.NetworkAttemptError, match="203.0.113.9"):
        socket.create_connection(("203.0.113.9", 443), timeout=0.1)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with socket.create_connection(server.getsockname(), timeout=1):
        pass
    server.close()


def test_probe_is_quick_parallel_and_cached_per_host(monkeypatch):
    monkeypatch.delenv("TLCOURSE_OFFLINE", raising=False)
    monkeypatch.setattr(env, "_answered", {})
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    up, down = (f"127.0.0.1:{s.getsockname()[1]}" for s in (server, closed))
    closed.close()
    assert env.unreachable([up, down]) == [down]
    server.close()

    real = env._answers
    calls = []

    def slow(host, timeout):  # a host whose DNS or SYN hangs: the probe must not wait for it
        calls.append(host)
        if host == "slow.example":
            time.sleep(5)
            return False
        return real(host, timeout)

    monkeypatch.setattr(env, "_answers", slow)
    start = time.monotonic()
    assert env.unreachable(["slow.example", up, down]) == ["slow.example", down]
    assert time.monotonic() - start <= 2.0  # the decision takes at most PROBE_TIMEOUT (1.5 s)
    assert calls == ["slow.example"]  # up and down were answered before: not probed again


def test_report_says_the_online_decision_in_one_line(monkeypatch):
    monkeypatch.setattr(env, "_answered", {})
    monkeypatch.setenv("TLCOURSE_OFFLINE", "1")
    assert env._network_line(True) == "offline (TLCOURSE_OFFLINE=1)"
    monkeypatch.delenv("TLCOURSE_OFFLINE")
    monkeypatch.setattr(env, "_answers", lambda host, timeout: False)
    assert env.is_offline(refresh=True) is True
    assert env._network_line(True).startswith("offline (storage.googleapis.com did not answer")
    assert env._network_line(False) == "online (each dataset's host is checked on first use)"
    monkeypatch.setattr(env, "_answered", {"storage.googleapis.com": True})
    assert env._network_line(True).startswith(
        "offline (a download failed"
    )  # a data fallback turned it offline


def test_data_dir_is_one_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCOURSE_DATA_DIR", "")  # unset; restored after setup() sets it
    assert env.data_dir() == env.cache_dir("data")
    course = env.setup("zz", verbose=False, data_dir=tmp_path / "drive")
    assert env.data_dir() == tmp_path / "drive" and (tmp_path / "drive").is_dir()
    assert f"datasets {tmp_path / 'drive'}" in course.report()
    monkeypatch.setenv("TLCOURSE_DATA_DIR", "/content/drive/MyDrive/tlcourse")
    if not os.path.isdir("/content/drive/MyDrive"):
        with pytest.raises(ConfigError, match="not mounted") as info:
            env.data_dir()
        assert "drive.mount" in info.value.hint


def test_setup_reports_and_records(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TLCOURSE_RECORD_DIR", str(tmp_path))
    course = env.setup("zz", seed=7)
    out = capsys.readouterr().out
    for fact in ("TensorFlow", "Keras", "precision float32", "profile   ci", "offline"):
        assert fact in out
    assert course.profile == "ci" and course.budget == PROFILES["ci"]
    assert course.replicas == 1 and course.precision == "float32"
    import numpy as np

    course.record("accuracy", np.float32(0.5))
    course.record("curve", np.arange(3))
    assert (tmp_path / "zz.json").read_text().count("accuracy") == 1
    import json

    assert json.loads((tmp_path / "zz.json").read_text()) == {"accuracy": 0.5, "curve": [0, 1, 2]}
    assert env.current() is course


def test_setup_applies_injected_gpu_policy():
    import keras

    try:
        course = env.setup(verbose=False, devices=[T4])
        assert course.precision == "mixed_float16"
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_seeding_repeats_random_numbers():
    import numpy as np

    env.setup(verbose=False, seed=3)
    first = np.random.rand(3)
    env.setup(verbose=False, seed=3)
    assert np.array_equal(first, np.random.rand(3))


def _run(seed, seeding):
    """(initial weights, trained weights) of a small model with dropout, a seeded shuffle and fit's own."""
    import keras
    import numpy as np
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    seeding(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.5),
                              keras.layers.Dense(2)])  # fmt: skip
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = model.get_weights()
    batches = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(32, seed=seed).batch(8)
    model.fit(batches, epochs=2, shuffle=False, verbose=0)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # fit shuffles arrays with TensorFlow's seeds
    return initial, model.get_weights()


def test_reseed_trains_what_set_random_seed_trains_without_emptying_tensorflows_cache(monkeypatch):
    import keras
    import numpy as np
    import tensorflow as tf

    def same(a, b):
        return all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))

    env.setup(verbose=False, seed=42)
    by_keras = _run(5, keras.utils.set_random_seed)
    monkeypatch.setattr(
        tf.random, "set_seed", lambda seed: pytest.fail("reseed emptied TensorFlow's kernel cache")
    )
    by_reseed = _run(5, env.reseed)
    other = _run(6, env.reseed)
    # the same initial weights, dropout masks and shuffle orders: the same trained weights
    assert same(by_keras[0], by_reseed[0]) and same(by_keras[1], by_reseed[1])
    assert not same(by_reseed[0], other[0]) and not same(by_reseed[1], other[1])


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", True, None])
def test_reseed_refuses_a_seed_numpy_cannot_take(seed):
    with pytest.raises(ConfigError, match="reseed: the seed must be an integer") as caught:
        env.reseed(seed)
    assert "course.budget.seeds" in caught.value.hint


def test_mirrored_strategy_over_two_logical_cpus():
    script = textwrap.dedent(
        """
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from tlcourse import env
        names = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = env.choose_strategy([env.DeviceInfo("CPU")], logical_devices=names)
        import keras, numpy as np
        with strategy.scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(np.ones((8, 4)), np.zeros(8), batch_size=4, epochs=1, verbose=0)
        print(type(strategy).__name__, strategy.num_replicas_in_sync)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "MirroredStrategy 2" in out.stdout


@pytest.mark.parametrize("profile", ["ci", "cpu"])
def test_setup_keeps_tensorflows_native_log_lines_out_of_the_first_cell(profile):
    # TensorFlow 2.20+ writes "oneDNN custom operations are on" and the like to file descriptor 2
    # before absl is initialised; in a notebook that is red text under the set-up cell. The lessons
    # import Keras after setup(), as here.
    code = (f"import tlcourse; tlcourse.setup('00', profile={profile!r}, verbose=False); "
            "import keras, tensorflow; keras.ops.ones(2); print('done')")  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ)
    assert quiet.returncode == 0, quiet.stderr
    assert "done" in quiet.stdout
    assert "InitializeLog" not in quiet.stderr and "oneDNN" not in quiet.stderr, quiet.stderr


def test_what_students_import_never_loads_the_authoring_or_grading_tools():
    # Colab's first cell installs tlcourse alone: importing it, setting up and touching every student module
    # must not need jupytext, nbclient, nbconvert, papermill, nbgrader or dask (issue #15).
    code = (
        "import sys, tlcourse; tlcourse.setup('00', profile='ci', verbose=False)\n"
        "from tlcourse import adapt, checks, data, errors, introspect, models, train, viz\n"
        "tlcourse.check('00.1')\n"
        "banned = {'jupytext', 'nbclient', 'nbconvert', 'papermill', 'nbgrader', 'dask', 'tlcourse_tools'}\n"
        "print(sorted(banned & {name.split('.')[0] for name in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
