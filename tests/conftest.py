"""Test-wide settings: offline, `ci` profile, no display, and a guard against network use."""

import os

os.environ.setdefault("TLCOURSE_OFFLINE", "1")
os.environ.setdefault("TLCOURSE_PROFILE", "ci")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tlcourse.env import install_socket_guard  # noqa: E402

if os.environ["TLCOURSE_OFFLINE"] == "1":
    install_socket_guard()
