"""The shipped operations files work: every crontab line and the systemd service check clean
with exactly the environment they set, their schedules overlap within the handover window,
`recorder check` reports every problem at once, and the alert rules name real metrics."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from recorder import config as config_mod
from recorder.config import ConfigProblems
from recorder.metrics import RunMetrics
from tests.conftest import ROOT, Ran
from tests.conftest import cli as in_process

CONF = ROOT / "conf"
# Secrets the shipped configs name: none may leak in from the test's own environment.
SECRETS = {"MACKINAC_API_KEY", "TOTALIS_API_KEY", "POWERTRADE_API_KEY",
           "POWERTRADE_API_SECRET", "DIFFUSAL_TOKEN", "DERIVE_SESSION_KEY"}


def cli(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> Ran:
    """``recorder ARGS`` from ``cwd`` with no secret in its environment but ``env``'s.
    In-process: what the command prints and its exit code are the point here, not a process
    of its own (a Python process importing the lake stack costs a second of CPU). An
    exception the command does not turn into a message fails the test."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        for key in SECRETS:
            mp.delenv(key, raising=False)
        return in_process(args, env)


def check(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> Ran:
    return cli(["check", *args], env, cwd)


def record_args(command: str) -> list[str]:
    """The arguments of the `recorder record ...` inside a shell command line."""
    words = shlex.split(command.split("&&")[-1].split(">>")[0])
    at = next(i for i, w in enumerate(words) if w.endswith("recorder"))
    assert words[at + 1] == "record", command
    return words[at + 2:]


def options(args: list[str]) -> tuple[str, list[str], float]:
    """(config, venues, duration seconds) of a record command line."""
    cfg, venues, duration = "conf/sim.toml", [], 0.0
    for flag, value in zip(args, [*args[1:], ""], strict=True):
        if flag in ("--config", "-c"):
            cfg = value
        elif flag == "--venue":
            venues.append(value)
        elif flag in ("--duration", "-d"):
            duration = config_mod.parse_duration(value)
    return cfg, venues, duration


def check_line(args: list[str], env: dict[str, str]) -> tuple[str, list[str], float]:
    cfg, venues, duration = options(args)
    r = check(["--config", cfg, *sum((["--venue", v] for v in venues), [])], env)
    assert r.returncode == 0, f"{args}: {r.stderr}"
    assert f"{len(venues)} venue(s)" in r.stdout
    return cfg, venues, duration


def assert_overlap(cfg: str, period: float, duration: float) -> None:
    """A run lasts longer than the period between starts (no unrecorded minute), and the
    next starts within the previous one's handover window (or it would exit 2)."""
    handover = config_mod.load(ROOT / cfg).recorder.handover
    assert period < duration <= period + handover, (period, duration, handover)


def test_every_crontab_line_checks_clean_with_the_env_it_sets_and_runs_overlap() -> None:
    env: dict[str, str] = {}
    lines = []
    for raw in (CONF / "crontab.example").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if re.match(r"^[A-Z_][A-Z0-9_]*=", line):
            k, _, v = line.partition("=")
            env[k] = v
            continue
        minute, hour, dom, month, dow, command = line.split(None, 5)
        assert (minute, hour, dom, month, dow) == ("0", "*", "*", "*", "*"), line
        lines.append(command)
    assert len(lines) >= 2
    seen: dict[str, list[str]] = {}
    for command in lines:
        assert "--quiet" in command and "--duration" in command
        cfg, venues, duration = check_line(record_args(command), env)
        assert_overlap(cfg, 3600.0, duration)
        for v in venues:  # two lines never record one venue (their locks would clash)
            assert v not in seen.get(cfg, []), v
            seen.setdefault(cfg, []).append(v)
    # and without the env the crontab sets, the same lines do not check clean
    r = check(["--config", "conf/live.toml", "--venue", "mackinac"], {})
    assert r.returncode == 2 and "MACKINAC_API_KEY" in r.stderr


def unit(path: Path) -> dict[str, list[str]]:
    """``Key -> [values]`` of a systemd unit file (all sections)."""
    out: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_systemd_service_and_timers_check_clean_and_overlap() -> None:
    d = CONF / "systemd"
    service = unit(d / "tick-recorder@.service")
    [exec_start] = service["ExecStart"]
    [env_file] = service["EnvironmentFile"]
    assert env_file.endswith("recorder.env")
    env = {}
    for raw in (d / "recorder.env.example").read_text().splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            k, _, v = raw.partition("=")
            env[k.strip()] = v.strip()
    args = shlex.split(exec_start)
    assert args[0].endswith("/recorder") and args[1] == "record"
    cfg, venues, duration = check_line(args[2:], env)
    assert "--quiet" in args and service["KillMode"] == ["mixed"]
    # two timers, each every other hour, one on even and one on odd hours: together a run
    # every hour, each of the service's two instances (systemd never starts an instance
    # that still runs, so one timer could not overlap)
    hours = []
    instances = []
    for name in ("tick-recorder-a.timer", "tick-recorder-b.timer"):
        t = unit(d / name)
        [cal] = t["OnCalendar"]
        m = re.fullmatch(r"\*-\*-\* (\d\d)/2:00:00", cal)
        assert m, cal
        hours.append(int(m.group(1)))
        [target] = t["Unit"]
        assert re.fullmatch(r"tick-recorder@[a-z]+\.service", target)
        instances.append(target)
    assert sorted(hours) == [0, 1] and len(set(instances)) == 2
    assert_overlap(cfg, 3600.0, duration)


BROKEN = """
[recorder]
data_dir = "{data}"
journal_flush_ms = 0
lake_rotate_seconds = "soon"
status_intervall = "1s"

[venues.mackinac]
url = "ws://127.0.0.1:9/feed"
symbols = ["hl:ETH"]
api_key_env = "OPS_TEST_MISSING_KEY"

[venues.mackinac.transport]
idle_timeout = "0s"
ping_interval = "0s"
backoff_initial = "10s"
backoff_max = "1s"

[venues.derive]
url = "wss://example.invalid/ws"
variant = "v9"
"""


def test_check_lists_every_problem_with_file_and_key_and_exits_2(tmp_path: Path) -> None:
    p = tmp_path / "broken.toml"
    p.write_text(BROKEN.format(data=tmp_path / "data"))
    r = check(["--config", str(p)], {})
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    for key in ("[recorder].journal_flush_ms: must be greater than 0",
                "[recorder].lake_rotate_seconds: expected a duration",
                "[recorder].status_intervall: unknown setting",
                "[venues.mackinac.transport].idle_timeout: must be greater than 0",
                "[venues.mackinac.transport].ping_interval: must be greater than 0",
                "[venues.mackinac.transport].backoff_max: must be at least backoff_initial"):
        assert any(line.startswith(f"{p} {key}") for line in lines), (key, r.stderr)
    assert "6 problem(s)" in lines[-1]
    # the file's settings fixed, the venues are checked: options and secrets, all at once
    fixed = "\n".join(line for line in BROKEN.format(data=tmp_path / "data").splitlines()
                      if not line.startswith(("journal_flush_ms", "lake_rotate", "status_",
                                              "idle_timeout", "ping_interval",
                                              "backoff_")))
    p.write_text(fixed)
    r = check(["--config", str(p)], {})
    assert r.returncode == 2, r.stderr
    assert f"{p} [venues.mackinac].api_key_env: environment variable OPS_TEST_MISSING_KEY " \
        "is not set" in r.stderr
    assert f"{p} [venues.derive].variant" in r.stderr and "2 problem(s)" in r.stderr
    # a secret is named, never printed; with it set and the bad option gone: clean
    p.write_text(fixed.replace('variant = "v9"', ""))
    r = check(["--config", str(p)], {"OPS_TEST_MISSING_KEY": "s3cr3t-value"})
    assert r.returncode == 0, r.stderr
    assert "s3cr3t-value" not in r.stdout + r.stderr
    assert "ok: 2 venue(s) (mackinac, derive)" in r.stdout


def test_shipped_configs_check_clean(tmp_path: Path) -> None:
    r = check(["--config", "conf/sim.toml", "--data-dir", str(tmp_path / "d")], {})
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "d").exists()  # check writes nothing


@pytest.mark.parametrize("setting", ["idle_timeout", "ping_interval", "connect_timeout",
                                     "backoff_initial"])
def test_zero_timeouts_are_refused_at_load(tmp_path: Path, setting: str) -> None:
    p = tmp_path / "c.toml"
    p.write_text(f'[venues.mackinac]\nurl = "ws://x/feed"\nsymbols = ["hl:ETH"]\n'
                 f'[venues.mackinac.transport]\n{setting} = "0s"\n')
    with pytest.raises(ConfigProblems) as err:
        config_mod.load(p)
    assert err.value.problems == [(f"[venues.mackinac.transport].{setting}",
                                   "must be greater than 0, got '0s' (a zero timeout or "
                                   "interval would turn its watchdog into a loop)")]


def test_record_refuses_a_bad_config_with_every_problem_before_writing(tmp_path: Path) -> None:
    p = tmp_path / "broken.toml"
    p.write_text(BROKEN.format(data=tmp_path / "data"))
    r = cli(["record", "--config", str(p), "--duration", "2s"], {})
    assert r.returncode == 2
    assert "6 problems in" in r.stderr and "idle_timeout" in r.stderr
    assert not (tmp_path / "data").exists()


def test_alert_rules_name_only_metrics_a_run_writes(tmp_path: Path) -> None:
    m = RunMetrics(tmp_path, None, "c.toml", "run", "host", 0)
    m.refresh([], {"venues": {"v": {}}})
    names = set()
    for fam in m.collect():
        names.add(fam.name)
        if fam.type == "counter":
            names.add(fam.name + "_total")
    text = (CONF / "prometheus" / "recorder-alerts.yml").read_text()
    used = set(re.findall(r"\b(recorder_[a-z_]+)\b", text))
    assert used and used <= names, used - names
    assert text.count("- alert:") >= 5
    # the label matchers used exist on the series they select
    assert 'conn!="(streams)"' in text and "recorder_seconds_since_last_frame" in text
