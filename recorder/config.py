"""Configuration: frozen dataclasses read from ``conf/*.toml``.

Secrets never appear in a config file; the file names the environment variable that holds
them (``api_key_env = "MACKINAC_API_KEY"``), and :func:`secret` reads it.
Unknown keys are errors, so a typo cannot silently turn a setting off.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
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
    # At the end of `record`, compact yesterday's lake (UTC) if it is closed (recorder
    # compact): a cron of hourly runs gets one sorted, deduplicated day per day.
    compact_yesterday: bool = False


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

    def venue(self, name: str) -> VenueConfig:
        for v in self.venues:
            if v.name == name:
                return v
        raise ConfigError(f"{self.path}: no venue named {name!r}")


def _typed(cls: type, section: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in section.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r} (known: {', '.join(known)})")
        default = known[key].default
        try:
            if isinstance(default, Path):
                kwargs[key] = Path(value)
            elif isinstance(default, float):
                kwargs[key] = parse_duration(value) if isinstance(value, str) else float(value)
            elif isinstance(default, bool) or isinstance(default, int):
                if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(
                    default, bool
                ):
                    raise TypeError
                kwargs[key] = value
            else:
                kwargs[key] = value
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}.{key}: expected {type(default).__name__}, got {value!r}"
            ) from None
    return cls(**kwargs)


def load(path: str | Path, data_dir: str | Path | None = None) -> Config:
    """Read and validate a config file. Raises :class:`ConfigError` with the file and key."""
    from recorder.venues import VENUES  # late: the venue registry imports adapters

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    unknown = set(raw) - {"recorder", "venues"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}")
    rec_section = dict(raw.get("recorder", {}))
    if data_dir is not None:
        rec_section["data_dir"] = str(data_dir)
    recorder = _typed(RecorderSettings, rec_section, f"{path} [recorder]")
    if recorder.journal_flush_ms <= 0:
        raise ConfigError(f"{path} [recorder].journal_flush_ms must be positive")
    venues = []
    for name, section in raw.get("venues", {}).items():
        where = f"{path} [venues.{name}]"
        if not NAME_RE.match(name):
            raise ConfigError(f"{where}: venue names are lower-case letters, digits and _")
        if not isinstance(section, dict):
            raise ConfigError(f"{where}: expected a table")
        section = dict(section)
        adapter = section.pop("adapter", name)
        if adapter not in VENUES:
            raise ConfigError(f"{where}: unknown adapter {adapter!r} (known: {sorted(VENUES)})")
        transport = _typed(TransportSettings, section.pop("transport", {}), f"{where}.transport")
        enabled = section.pop("enabled", True)
        simulate = section.pop("simulate", False)
        url = section.pop("url", None)
        sim = section.pop("sim", {})
        if not isinstance(sim, dict):
            raise ConfigError(f"{where}.sim: expected a table of simulator options")
        if not isinstance(enabled, bool) or not isinstance(simulate, bool):
            raise ConfigError(f"{where}: enabled and simulate are true or false")
        if not simulate and not url:
            raise ConfigError(f"{where}: needs url = ... (or simulate = true)")
        venues.append(
            VenueConfig(name, adapter, enabled, simulate, url, transport, section, sim)
        )
    if not any(v.enabled for v in venues):
        raise ConfigError(f"{path}: no enabled venue")
    return Config(path, recorder, tuple(venues))
