"""Error tree. Every error says who is at fault and whether retrying can help.

``fault`` is one of ``"user"`` (config, arguments, environment), ``"venue"`` (the remote side
sent something we cannot use), ``"local"`` (disk, permissions, this machine) or ``"bug"``.
``retryable`` tells a caller (or a cron wrapper) whether the same call may succeed later.
"""

from __future__ import annotations


class RecorderError(Exception):
    fault = "bug"
    retryable = False

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.context = context

    def one_line(self) -> str:
        tag = f"{self.fault} error" + (", retry may help" if self.retryable else "")
        return f"{tag}: {self}"


class ConfigError(RecorderError):
    """The configuration file or the command line is wrong; fix it, retrying will not help."""

    fault = "user"


class CredentialsRefused(ConfigError):
    """Every venue refused the configured credentials: nothing was recorded. Fix the keys."""


class MissingSecret(ConfigError):
    """An env var named in the config as holding a secret is not set."""


class LockedError(RecorderError):
    """Another run of the same config holds the lock; retry after it finishes."""

    fault = "user"
    retryable = True


class StorageError(RecorderError):
    """The data directory cannot be written (permissions, disk full)."""

    fault = "local"



class VenueError(RecorderError):
    """The venue refused us or sent something unusable."""

    fault = "venue"
    retryable = True


class Unreachable(VenueError):
    """No connection could be made for the whole run."""
