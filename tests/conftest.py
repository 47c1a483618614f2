"""Shared fixtures. Tests use real files under tmp_path and real loopback sockets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENUES = ROOT / "tests" / "venues"  # each venue's tests, its fixtures in VENUES / venue / "fixtures"
RECORDER = [sys.executable, "-m", "recorder.cli"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d
