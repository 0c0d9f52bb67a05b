"""The exceptions crmlink raises, and how the host treats them.

Connectors classify, the host decides: a :class:`RetriableError` is retried by the host's
one retry policy, a :class:`SkippableRecordError` skips one record when the user asked
for ``--on-error skip``, and anything else stops the run with its message.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What ``crmlink`` exits with (documented in docs/cli.md)."""

    OK = 0             #: success (also: no finding at or above ``--fail-on``)
    FINDINGS = 1       #: ``audit --fail-on``: a finding at or above the threshold exists
    USAGE = 2          #: bad command line, option or configuration
    BAD_INPUT = 3      #: a record or file cannot be read (nothing was stored)
    CONNECTOR = 4      #: the CRM refused or failed (credentials, permission, outage)
    PARTIAL = 5        #: the API budget ran out; the next run resumes
    STORE = 6          #: the store cannot be opened or written (busy, out of disk space, damaged, read-only, its server gone)
    PLUGIN = 7         #: a plugin is broken or conflicts with another
    FAILED = 8         #: any other error crmlink or a plugin reported
    BUSY = 9           #: another sync of the same source is running in the same store; run again when it ends
    INTERNAL = 70      #: a bug in crmlink or a plugin (run with --debug for the traceback)
    PIPE = 141         #: whatever read the output stopped reading (a pipe into ``head``): nothing more is said, as SIGPIPE ends other tools


class CrmlinkError(Exception):
    """Base class: the message is one sentence a user can act on."""

    exit_code = ExitCode.FAILED


class ConfigError(CrmlinkError):
    """The configuration, a command-line option or an environment variable is wrong."""

    exit_code = ExitCode.USAGE


class PluginError(CrmlinkError):
    """A plugin is broken or conflicts with another."""

    exit_code = ExitCode.PLUGIN


class StoreError(CrmlinkError):
    """The store cannot be opened or is from an incompatible version."""

    exit_code = ExitCode.STORE


class SyncBusyError(StoreError):
    """Another sync of the same source holds the source's lock in the store."""

    exit_code = ExitCode.BUSY


class ConnectorError(CrmlinkError):
    """Talking to a CRM or reading an export failed."""

    exit_code = ExitCode.CONNECTOR


class AuthError(ConnectorError):
    """Credentials are missing, wrong or expired beyond renewal."""


class RetriableError(ConnectorError):
    """A temporary failure (rate limit, 5xx, timeout): the host retries.

    ``retry_after`` is the number of seconds the server asked us to wait, if it said (the
    host always waits at least that long). ``suggested_wait`` is the connector's own guess
    when the server did not say, such as the length of a rate-limit window; the host's
    policy honours it up to its longest wait.
    """

    def __init__(self, message: str, *, retry_after: float | None = None,
                 suggested_wait: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.suggested_wait = suggested_wait


class FatalError(ConnectorError):
    """A failure retrying cannot fix (no permission, API disabled)."""


class BudgetExhausted(ConnectorError):
    """The run's API budget or the CRM's daily limit is used up: stop cleanly, resume later."""

    exit_code = ExitCode.PARTIAL


class InvalidRecord(CrmlinkError):
    """A record does not fit the canonical model.

    Carries the entity, the record's remote id, the field and, when the record came
    from a file, where in the file.
    """

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, entity: str, remote_id: str | None, field: str, reason: str) -> None:
        self.entity, self.remote_id, self.field, self.reason = entity, remote_id, field, reason
        self.location: str | None = None
        super().__init__(self._text())

    def at(self, location: str) -> InvalidRecord:
        """Attach a location such as ``contacts.csv:12:5`` and return self."""
        self.location = location
        self.args = (self._text(),)
        return self

    def _text(self) -> str:
        who = f"{self.entity} {self.remote_id!r}" if self.remote_id else f"a {self.entity} record"
        where = f"{self.location}: " if self.location else ""
        return f"{where}{who}, field {self.field!r}: {self.reason}"


class SkippableRecordError(InvalidRecord):
    """An invalid record that may be skipped under ``--on-error skip``."""
