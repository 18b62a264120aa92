"""The one error tree of plugwatch. Every error a user can see is one of these.

    PlugwatchError                 base: str(exc) is one line a user can act on
    ├── DeviceError                talking to a plug went wrong (a ReadFailure carries its text)
    │   ├── DeviceTimeout          no (complete) answer within the timeout: retry later
    │   ├── DeviceUnreachable      connection refused / reset / closed / no route: retry later
    │   └── BadAnswer              the plug answered, but unusable answer: frame, JSON, err_code
    ├── ConfigError                plugwatch.yaml or a rule file is wrong (names file, line, field)
    ├── TraceError                 a CSV trace cannot be read (names file and line)
    ├── StoreError                 the database failed (URL passwords redacted): retry later
    │   └── StoreRejected          the database refused a value written (a constraint, a type):
    │                              retrying the same rows cannot help; the writer sets them aside
    ├── NotifyError                a notification target failed (apprise URL redacted)
    └── MissingExtra               an optional part is not installed (names the pip extra)

Other libraries' exceptions are converted at one boundary per edge, always `raise ... from exc`.
"""

from __future__ import annotations


class PlugwatchError(Exception):
    """Base of every plugwatch error; its message is one line meant for a user."""


class DeviceError(PlugwatchError):
    """Reading a plug failed. `kind` is a short fixed word for metrics (ReadFailure.kind)."""

    kind = "error"


class DeviceTimeout(DeviceError):
    """The plug did not answer (completely) within the timeout."""

    kind = "timeout"


class DeviceUnreachable(DeviceError):
    """The plug could not be reached: refused, reset, closed, no route."""

    kind = "unreachable"


class BadAnswer(DeviceError):
    """The plug answered with something unusable: bad frame, bad JSON, wrong shape, err_code."""

    kind = "bad_answer"


class ConfigError(PlugwatchError):
    """A configuration or rule file is invalid."""


class TraceError(PlugwatchError):
    """A recorded trace (CSV) cannot be read."""


class StoreError(PlugwatchError):
    """The database failed."""


class StoreRejected(StoreError):
    """The database refused what was written (a constraint or a value it cannot hold)."""


class NotifyError(PlugwatchError):
    """A notification could not be delivered."""


class MissingExtra(PlugwatchError):
    """A command needs an optional dependency that is not installed (the message names it)."""
