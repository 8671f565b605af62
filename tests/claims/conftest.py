"""Shared helpers for the lessons' claim tests: read what a lesson recorded with ``course.record``."""

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def record_dir() -> Path:
    """Where the lessons wrote their records: ``$TLCOURSE_RECORD_DIR``, default ``build/records``."""
    return Path(os.environ.get("TLCOURSE_RECORD_DIR") or ROOT / "build" / "records")


def load_records(lesson: str) -> dict:
    """The records of lesson ``NN`` as a dict; skips the test when the lesson has not been run."""
    path = record_dir() / f"{lesson}.json"
    if not path.exists():
        pytest.skip(
            f"{path} is missing: run the lesson first (make test runs every lesson before the claims)."
        )
    return json.loads(path.read_text())


@pytest.fixture
def records():
    """``records("01")`` → the dict lesson 01 recorded (the test is skipped if it has not run)."""
    return load_records
