"""Resumable training for real: a training process killed with SIGKILL, re-run, finishes the epochs; and
the file layout of Keras's BackupAndRestore that tlcourse.introspect.keras_backup_epoch relies on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tlcourse import introspect

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 8

# Each epoch does real work (a 2-layer MLP on 8192 examples), no sleeping; the log records
# every epoch that begins, so a repeated epoch shows up as a repeated line.
TRAINING_SCRIPT = textwrap.dedent(
    f"""
    import json, sys
    import keras, numpy as np
    import tlcourse
    from tlcourse import train

    run_dir, log_path = sys.argv[1], sys.argv[2]
    tlcourse.setup(verbose=False, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8192, 256)).astype("float32")
    y = (x[:, :10].argmax(1)).astype("int64")
    model = keras.Sequential([keras.Input((256,)), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

    class LogEpochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            with open(log_path, "a") as log:
                log.write(f"{{epoch}}\\n")

    history = train.fit(model, (x, y), val=(x[:512], y[:512]), epochs={EPOCHS}, batch_size=64,
                        run_dir=run_dir, callbacks=[LogEpochs()], verbose=0)
    print(json.dumps({{"epochs": history.epochs, "resumed_from": history.resumed_from,
                      "loss": history.history["loss"]}}))
    """
)


def _finished_epochs(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / "backup" / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def test_a_run_killed_with_sigkill_resumes_and_repeats_at_most_one_epoch(tmp_path):
    script = tmp_path / "train_job.py"
    script.write_text(TRAINING_SCRIPT)
    run_dir, log = tmp_path / "run", tmp_path / "epochs.log"
    command = [sys.executable, str(script), str(run_dir), str(log)]
    env = {**os.environ, "TLCOURSE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}

    job = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _finished_epochs(run_dir) < 2:
        assert job.poll() is None, (
            "the training finished before it could be killed:\n" + job.stderr.read().decode()
        )
        assert time.monotonic() < deadline, "no checkpoint after 240 s"
        time.sleep(0.05)  # polling the file system, not timing anything
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    assert job.returncode == -signal.SIGKILL
    killed_at = _finished_epochs(run_dir)
    assert 2 <= killed_at < EPOCHS

    rerun = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    result = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert result["epochs"] == EPOCHS and len(result["loss"]) == EPOCHS
    assert result["resumed_from"] >= killed_at

    begun = [int(line) for line in log.read_text().split()]
    assert sorted(set(begun)) == list(range(EPOCHS))
    assert len(begun) <= EPOCHS + 1, f"epochs begun: {begun}"
    # The second process began right at the last checkpoint and ran the remaining epochs once.
    second = begun[len(begun) - (EPOCHS - result["resumed_from"]) :]
    assert second == list(range(result["resumed_from"], EPOCHS))
    first = begun[: len(begun) - len(second)]
    assert first == list(range(len(first))) and len(first) <= killed_at + 1
    assert (run_dir / "done.json").exists() and (run_dir / "final.weights.h5").exists()
    assert not (run_dir / "backup").exists()


WRITTEN_FOR = f"written for Keras {introspect.KERAS_WRITTEN_FOR}, running Keras {keras.__version__}"


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at: int, begun: list):
        super().__init__()
        self.at, self.begun = at, begun

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt
        self.begun.append(epoch)


def test_keras_backup_layout_and_a_torn_metadata_file(tmp_path):
    x, y = np.random.default_rng(0).random((32, 4), "float32"), np.arange(32) % 2

    def model():
        keras.utils.set_random_seed(0)
        net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        net.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return net

    def backup():
        return keras.callbacks.BackupAndRestore(
            str(tmp_path), double_checkpoint=True, delete_checkpoint=False
        )

    with pytest.raises(KeyboardInterrupt):
        model().fit(x, y, epochs=5, verbose=0, callbacks=[backup(), _Interrupt(3, [])])
    names = {p.name for p in tmp_path.iterdir()}
    layout = {
        "latest.weights.h5",
        "latest.weights.h5.bkp",
        "training_metadata.json",
        "training_metadata.json.bkp",
    }
    assert layout <= names, f"BackupAndRestore's files changed: {sorted(names)} ({WRITTEN_FOR})"
    assert introspect.keras_backup_epoch(tmp_path) == 3
    # A kill while Keras rewrote the metadata leaves it cut short; Keras alone would crash on resume
    # (ValueError, not the OSError it falls back on). The previous pair of files is put back.
    (tmp_path / "training_metadata.json").write_text('{"epoch": ')
    assert introspect.keras_backup_epoch(tmp_path) == 2
    begun = []
    model().fit(x, y, epochs=5, verbose=0, callbacks=[backup(), _Interrupt(99, begun)])
    assert begun == [2, 3, 4], f"BackupAndRestore resumed at {begun[:1]} ({WRITTEN_FOR})"
