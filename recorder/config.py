"""Configuration: frozen dataclasses read from ``conf/*.toml``.

Secrets never appear in a config file; the file names the environment variable that holds
them (``api_key_env = "MACKINAC_API_KEY"``), and :func:`secret` reads it.
Unknown keys are errors, so a typo cannot silently turn a setting off.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from recorder.errors import ConfigError, MissingSecret

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str | int | float) -> float:
    """``"55m"`` -> 3300.0 seconds. Bare numbers are seconds."""
    if isinstance(text, int | float):
        return float(text)
    m = _DURATION_RE.match(text)
    if not m:
        raise ConfigError(f"cannot read duration {text!r}; use e.g. 90s, 55m, 1h")
    return float(m.group(1)) * _UNITS[m.group(2)]


def secret(env_name: str, where: str) -> str:
    """Read a secret from the environment, or fail saying which variable and which setting."""
    value = os.environ.get(env_name)
    if not value:
        raise MissingSecret(f"environment variable {env_name} (named by {where}) is not set")
    return value


@dataclass(frozen=True)
class TransportSettings:
    """Knobs of the shared connection loop; any venue section may override them."""

    max_frame_bytes: int = 16 * 1024 * 1024  # Mackinac frames exceed 1 MB; its SDK uses 10 MB
    ping_interval: float = 20.0
    idle_timeout: float = 60.0
    connect_timeout: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0


@dataclass(frozen=True)
class RecorderSettings:
    data_dir: Path = Path("data")
    journal_flush_ms: int = 200
    journal_segment_bytes: int = 64 * 1024 * 1024
    journal_segment_seconds: float = 3600.0
    lake_flush_seconds: float = 10.0
    lake_max_rows: int = 200_000
    lake_max_bytes: int = 128 * 1024 * 1024
    lake_rotate_seconds: float = 300.0  # a committed file per table at least this often
    # Journal batches waiting for the disk beyond this: stop reading sockets until it halves.
    journal_max_pending_bytes: int = 64 * 1024 * 1024
    close_deadline: float = 10.0  # closing connections at the end takes at most this long
    # At the end of `record`, wait this long for the lake builder to finish the run; whatever
    # is left is finished by the next run's builder (or `recorder build`).
    lake_build_deadline: float = 120.0
    status_interval: float = 1.0
    # A run of a venue may start while the previous run of the same config and venue is in
    # its last `handover` seconds (by its --duration): both record meanwhile (the overlap the
    # dedup views absorb), so an hourly cron leaves no unrecorded minute. Outside that window
    # a second run of the same venue exits 2 (locked).
    handover: float = 600.0
    # Prometheus textfile ("" = <data_dir>/metrics/recorder.prom, "off" = none), rewritten
    # atomically every metrics_interval and at the end of the run.
    metrics_file: str = ""
    metrics_interval: float = 5.0

    # At the end of `record`, compact yesterday's lake (UTC) if it is closed (recorder
    # compact): a cron of hourly runs gets one sorted, deduplicated day per day.
    compact_yesterday: bool = False

    # "s3://bucket/prefix": committed lake files, closed journal segments and final
    # manifests go to this bucket (recorder/upload.py); "" = the data dir only. Endpoint,
    # region and keys come from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and
    # AWS_SECRET_ACCESS_KEY, never from this file.
    remote: str = ""


# Ranges: (minimum, strictly greater?) per setting. A zero timeout or interval turns a
# watchdog into a reconnect loop, so every one of them must be positive.
_POSITIVE = {
    "max_frame_bytes", "ping_interval", "idle_timeout", "connect_timeout", "backoff_initial",
    "backoff_max", "journal_flush_ms", "journal_segment_bytes", "journal_segment_seconds",
    "lake_flush_seconds", "lake_max_rows", "lake_max_bytes", "lake_rotate_seconds",
    "journal_max_pending_bytes", "close_deadline", "status_interval", "metrics_interval",
}
_NON_NEGATIVE = {"lake_build_deadline", "handover"}
_MINIMUM = {"max_frame_bytes": 1024, "journal_segment_bytes": 1 << 20,
            "journal_max_pending_bytes": 1 << 20}


@dataclass(frozen=True)
class VenueConfig:
    """One ``[venues.NAME]`` section. ``options`` holds the venue's own keys, which its
    adapter validates."""

    name: str
    adapter: str
    enabled: bool = True
    simulate: bool = False
    url: str | None = None
    transport: TransportSettings = field(default_factory=TransportSettings)
    options: dict[str, Any] = field(default_factory=dict)
    sim: dict[str, Any] = field(default_factory=dict)  # simulator options when simulate = true


@dataclass(frozen=True)
class Config:
    path: Path
    recorder: RecorderSettings
    venues: tuple[VenueConfig, ...]
    selected: tuple[str, ...] = ()  # the venues `record --venue` picked (none: all enabled)

    def venue(self, name: str) -> VenueConfig:
        for v in self.venues:
            if v.name == name:
                return v
        raise ConfigError(f"{self.path}: no venue named {name!r}")


class Problems:
    """Every problem found in one config file: ``(where, why)`` pairs, reported at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, why: str) -> None:
        self.items.append((where, why))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigProblems(self.path, self.items)


class ConfigProblems(ConfigError):
    """A config file with one or more problems; ``problems`` lists ``(key, why)``."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = list(problems)
        if len(problems) == 1:
            where, why = problems[0]
            text = f"{path}{' ' + where if where else ''}: {why}"
        else:
            text = f"{len(problems)} problems in {path}:" + "".join(
                f"\n  {where or '(file)'}: {why}" for where, why in problems)
        super().__init__(text)


def _typed(cls: type, section: dict[str, Any], where: str, problems: Problems) -> Any:
    """The section as ``cls``, every bad key reported to ``problems`` (the default is used
    for it, so the rest is still checked)."""
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in section.items():
        at = f"{where}.{key}"
        if key not in known:
            problems.add(at, f"unknown setting (known: {', '.join(known)})")
            continue
        default = known[key].default
        try:
            if isinstance(default, Path):
                if not isinstance(value, str) or not value:
                    raise TypeError
                v: Any = Path(value)
            elif isinstance(default, float):
                if isinstance(value, bool):
                    raise TypeError
                v = parse_duration(value) if isinstance(value, str) else float(value)
            elif isinstance(default, bool) or isinstance(default, int):
                if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(
                    default, bool
                ):
                    raise TypeError
                v = value
            elif isinstance(default, str):
                if not isinstance(value, str):
                    raise TypeError
                v = value
            else:
                v = value
        except (TypeError, ValueError, ConfigError):
            kind = ("a duration (90s, 5m, 1h) or seconds" if isinstance(default, float)
                    else type(default).__name__)
            problems.add(at, f"expected {kind}, got {value!r}")
            continue
        if isinstance(v, int | float) and not isinstance(v, bool):
            low = _MINIMUM.get(key)
            if key in _POSITIVE and v <= 0:
                problems.add(at, f"must be greater than 0, got {value!r} (a zero timeout or "
                             "interval would turn its watchdog into a loop)")
                continue
            if key in _NON_NEGATIVE and v < 0:
                problems.add(at, f"must not be negative, got {value!r}")
                continue
            if low is not None and v < low:
                problems.add(at, f"must be at least {low}, got {value!r}")
                continue
        kwargs[key] = v
    obj = cls(**kwargs)
    if isinstance(obj, TransportSettings) and obj.backoff_max < obj.backoff_initial:
        problems.add(f"{where}.backoff_max", f"must be at least backoff_initial "
                     f"({obj.backoff_initial:g}s), got {obj.backoff_max:g}s")
    return obj


_REMOTE_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/[^\s]*)?$")
# Keys that would put a credential or an endpoint in a config file.
CREDENTIAL_KEYS = ("access_key", "access_key_id", "aws_access_key_id", "secret_key",
                   "secret_access_key", "aws_secret_access_key", "session_token",
                   "aws_session_token", "endpoint", "endpoint_url", "aws_endpoint_url",
                   "region", "aws_region", "remote_key", "remote_secret")


def check_remote_url(url: str) -> str | None:
    """Why ``url`` is not a usable ``remote`` (None when it is)."""
    if url.startswith("s3://") and "@" in url[len("s3://"):].split("/", 1)[0]:
        return ("credentials in the URL: they come from AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, never from the config file")
    if not _REMOTE_URL.match(url):
        return f"an S3 URL like s3://bucket/prefix, got {url!r}"
    return None


def _check_remote(section: dict[str, Any], problems: Problems) -> None:
    """A config that holds bucket credentials (or an endpoint) is an error that says so; the
    keys are taken out so that they are not also reported as unknown."""
    for key in [k for k in section if k.lower() in CREDENTIAL_KEYS]:
        section.pop(key)
        problems.add(f"[recorder].{key}", "bucket credentials, endpoint and region never go "
                     "in the config file: set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                     "AWS_ENDPOINT_URL and AWS_REGION in the environment")
    url = section.get("remote")
    if isinstance(url, str) and url:
        why = check_remote_url(url)
        if why is not None:
            section.pop("remote")
            problems.add("[recorder].remote", why)


def load(path: str | Path, data_dir: str | Path | None = None) -> Config:
    """Read and validate a config file. Raises :class:`ConfigProblems` (a
    :class:`ConfigError`) naming the file, and for each problem the key and why: every
    problem of the file at once, not the first only. Adapter names and each venue's options
    are the catalogue's to check (``Catalogue.preflight``): this module knows no venue."""
    path = Path(path)
    problems = Problems(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    for section in sorted(set(raw) - {"recorder", "venues"}):
        problems.add(f"[{section}]", "unknown section (known: [recorder], [venues.NAME])")
    rec_section = raw.get("recorder", {})
    if not isinstance(rec_section, dict):
        problems.add("recorder", "expected a table [recorder]")
        rec_section = {}
    rec_section = dict(rec_section)
    if data_dir is not None:
        rec_section["data_dir"] = str(data_dir)
    _check_remote(rec_section, problems)
    recorder = _typed(RecorderSettings, rec_section, "[recorder]", problems)
    venues = []
    sections = raw.get("venues", {})
    if not isinstance(sections, dict):
        problems.add("venues", "expected tables [venues.NAME]")
        sections = {}
    for name, section in sections.items():
        where = f"[venues.{name}]"
        if not NAME_RE.match(name):
            problems.add(where, "venue names are lower-case letters, digits and _ "
                         "(at most 32, starting with a letter)")
            continue
        if not isinstance(section, dict):
            problems.add(where, "expected a table")
            continue
        section = dict(section)
        adapter = section.pop("adapter", name)
        tsec = section.pop("transport", {})
        if not isinstance(tsec, dict):
            problems.add(f"[venues.{name}.transport]", "expected a table")
            tsec = {}
        transport = _typed(TransportSettings, tsec, f"[venues.{name}.transport]", problems)
        enabled = section.pop("enabled", True)
        simulate = section.pop("simulate", False)
        url = section.pop("url", None)
        sim = section.pop("sim", {})
        if not isinstance(sim, dict):
            problems.add(f"{where}.sim", "expected a table of simulator options")
            sim = {}
        flags = (("enabled", enabled), ("simulate", simulate))
        for k, val in flags:
            if not isinstance(val, bool):
                problems.add(f"{where}.{k}", f"true or false, got {val!r}")
        if not all(isinstance(val, bool) for _, val in flags):
            continue
        if url is not None and (not isinstance(url, str) or "://" not in url):
            problems.add(f"{where}.url", f"a URL like wss://host/path, got {url!r}")
            continue
        if not simulate and not url:
            problems.add(where, "needs url = \"wss://...\" (or simulate = true)")
            continue
        venues.append(
            VenueConfig(name, adapter, enabled, simulate, url, transport, section, sim)
        )
    if sections and not problems.items and not any(v.enabled for v in venues):
        problems.add("[venues]", "no enabled venue")
    elif not sections:
        problems.add("[venues]", "no venue: add a [venues.NAME] section")
    problems.raise_if_any()
    return Config(path, recorder, tuple(venues))


def select(cfg: Config, names: tuple[str, ...] | list[str]) -> Config:
    """``cfg`` with only the venues ``names`` (``record --venue``), enabled whatever the
    file says; no names: the file's enabled venues."""
    if not names:
        return cfg
    known = {v.name: v for v in cfg.venues}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"{cfg.path}: no venue named {', '.join(map(repr, unknown))} "
                          f"(the config has: {', '.join(known)})")
    order = tuple(dict.fromkeys(names))
    picked = tuple(replace(known[n], enabled=True) for n in order)
    return replace(cfg, venues=picked, selected=order)


def env_names(options: dict[str, Any]) -> list[tuple[str, str]]:
    """``(setting, variable)`` for every ``*_env`` setting of a venue section: the names of
    environment variables that hold its secrets."""
    return [(k, v) for k, v in options.items() if k.endswith("_env") and isinstance(v, str)]


def split_where(text: str, prefix: str) -> tuple[str, str]:
    """An adapter's ``"[venues.x].key: why"`` as ``("[venues.x].key", "why")``."""
    if text.startswith(prefix):
        rest = text[len(prefix):]
        key, sep, why = rest.partition(": ")
        if sep and (not key or key.startswith(".")):
            return prefix + key, why
    return prefix, text


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(text: str | None) -> str | None:
    """``--date`` as given -> ``YYYY-MM-DD``, or a :class:`ConfigError` (the caller's fault)."""
    if text is None:
        return None
    try:
        if not _DAY.fullmatch(text):
            raise ValueError
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ConfigError(f"--date wants a day as YYYY-MM-DD, got {text!r}") from None
