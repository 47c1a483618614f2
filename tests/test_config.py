from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from recorder import config
from recorder.errors import ConfigError
from recorder.venues import CATALOGUE
from tests.conftest import RECORDER, ROOT, Ran, cli

GOOD = """
[recorder]
data_dir = "{data}"
[venues.mackinac]
url = "ws://127.0.0.1:9/feed"
symbols = ["hl:ETH"]
"""


def _conf(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text.format(data=tmp_path / "data"))
    return p


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("[recorder]", "[recorder]\njournal_flush_ms = 'soon'"), "journal_flush_ms"),
    (GOOD.replace("[recorder]", "[recorder]\nflush = 1"), "flush: unknown setting"),
    (GOOD.replace('url = "ws://127.0.0.1:9/feed"', ""), "needs url"),
    (GOOD.replace("[venues.mackinac]", "[venues.Mack-1]"), "venue names"),
    (GOOD.replace("[venues.mackinac]", "[venues.m]\nadapter = 'nope'"), "unknown adapter"),
    (GOOD + "[bogus]\n", "unknown section"),
    ("[recorder\n", "not valid TOML"),
])
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    # The file's own problems are config.load's; adapter names and venue options the
    # catalogue's (config knows no venue).
    with pytest.raises(ConfigError, match=message):
        CATALOGUE.check(config.load(_conf(tmp_path, text)))


def test_durations() -> None:
    assert config.parse_duration("55m") == 3300.0
    assert config.parse_duration("200ms") == 0.2
    assert config.parse_duration(7) == 7.0
    with pytest.raises(ConfigError):
        config.parse_duration("soon")


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``recorder ARGS`` as a process of its own, without MACKINAC_API_KEY unless given."""
    e = {k: v for k, v in os.environ.items() if k != "MACKINAC_API_KEY"}
    e.update(env or {})
    return subprocess.run([*RECORDER, *args], cwd=ROOT, capture_output=True, text=True,
                          env=e, timeout=60)


def _refused(args: list[str]) -> Ran:
    """``recorder ARGS`` in-process, without MACKINAC_API_KEY, for a command refused before it
    records (its message and exit code are the point, and a process of its own costs a
    second of CPU). An exception it does not turn into a message fails the test."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MACKINAC_API_KEY", raising=False)
        return cli(args)


def test_cli_bad_config_exits_nonzero_and_writes_nothing(tmp_path: Path) -> None:
    p = _conf(tmp_path, GOOD.replace('symbols = ["hl:ETH"]', 'symbols = "hl:ETH"'))
    r = _refused(["record", "--config", str(p), "--duration", "2s"])
    assert r.returncode == 2
    assert "symbols" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_cli_missing_secret_exits_nonzero_and_writes_nothing(tmp_path: Path) -> None:
    p = _conf(tmp_path, GOOD + 'api_key_env = "MACKINAC_API_KEY"\n')
    r = _refused(["record", "--config", str(p), "--duration", "2s"])
    assert r.returncode == 2
    assert "MACKINAC_API_KEY" in r.stderr and "not set" in r.stderr
    assert not (tmp_path / "data").exists()


def test_cli_unreachable_venue_exits_nonzero_with_reason(tmp_path: Path) -> None:
    p = _conf(tmp_path, GOOD)
    r = _run(["record", "--config", str(p), "--duration", "2s", "--quiet"])
    assert r.returncode == 1, r.stderr
    assert "no venue could be reached" in r.stderr


def test_cli_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = tmp_path / "c.toml"
    p.write_text(GOOD.format(data=blocker / "data"))
    r = _refused(["record", "--config", str(p), "--duration", "1s"])
    assert r.returncode == 1 and "not writable" in r.stderr
