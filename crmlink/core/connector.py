"""What a connector plugin implements: a :class:`Connector` with :class:`Stream` s.

A connector declares its settings (so the CLI, the config file and the environment can
supply them, and secrets are known to be secrets) and yields canonical records stream by
stream. It never writes to the store and never retries: the host's sync engine does both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from crmlink.core.errors import ConfigError, CrmlinkError, InvalidRecord
from crmlink.core.identity import IdentityResolver, IdentitySettings
from crmlink.core.model import Record
from crmlink.core.rows import RowBatch


@dataclass(frozen=True)
class Setting:
    """One setting of a connector.

    ``name`` is a Python identifier (``instance_url``); the CLI offers it as
    ``--instance-url`` and reads ``<CONNECTOR>_<NAME>`` from the environment unless
    ``envvar`` says otherwise. ``secret=True`` keeps the value out of every output.
    ``argument=True`` makes it a positional argument (the CSV connector's PATH).
    """

    name: str
    help: str = ""
    required: bool = False
    secret: bool = False
    default: Any = None
    envvar: str | None = None
    argument: bool = False
    is_flag: bool = False
    type: type = str
    #: The option may be given several times (``--internal-domain a --internal-domain b``);
    #: the value is then a tuple.
    multiple: bool = False


def _nothing(_message: str) -> None:
    return None


@dataclass(frozen=True)
class SyncContext:
    """What a sync run knows besides the connector's settings, handed to
    :meth:`Connector.prepare` before :meth:`Connector.streams`.

    ``config`` is the whole config file with its defaults (``config["identity"]``,
    ``config["strength"]`` ...); ``records(entity, source)`` reads the live records of
    another source in the store (the CRM a mailbox is linked to); ``crm_sources()`` names
    the sources that hold accounts; ``find(entity, remote_ids)`` the live records with
    those ids in any source (a cheap indexed lookup: the message a reply answers, stored
    by an earlier run or another source). ``notice`` prints one line for the user (stderr,
    unless quiet), ``progress`` a transient status line (a terminal only). ``now`` is the
    run's start.
    """

    source: str
    config: Mapping[str, Any] = field(default_factory=dict)
    records: Callable[[str, str], Iterable[Record]] = lambda entity, source: ()
    crm_sources: Callable[[], list[str]] = list
    notice: Callable[[str], None] = _nothing
    progress: Callable[[str], None] = _nothing
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    find: Callable[[str, Sequence[str]], Iterable[Record]] = lambda entity, remote_ids: ()

    def identity(self, internal_domains: Iterable[str] = ()) -> IdentityResolver:
        """The identity resolver over every CRM source in the store but this one, with
        the ``[identity]`` settings and ``internal_domains`` (the ``--internal-domain``
        flags) added to ours."""
        settings = IdentitySettings.from_config(self.config, internal_domains)
        sources = [s for s in self.crm_sources() if s != self.source]
        return IdentityResolver.from_records(self.records, sources, settings)


class Stream:
    """One kind of record from a source, read in order.

    ``records(state)`` yields canonical records. ``state`` is what :meth:`next_state`
    returned at the end of the previous successful run (``None`` on the first run or
    with ``--full``). When ``is_sorted`` is true the records come in non-decreasing
    ``modified_at`` order and the host checkpoints after every batch, so an interrupted
    run resumes where it stopped.

    ``name`` and ``entity`` are usually class attributes; a stream class that serves
    several files or object types sets them per instance in ``__init__``.
    """

    name: str = ""
    entity: type[Record] = Record
    #: Other record types the stream yields beside its entity, each stored as its own
    #: kind: a deal's stage changes read with the deal, the unknown people a page of
    #: messages names. They ride on the stream's cursor; ``is_sorted``, ``snapshot``
    #: deletions and the conformance kit's order checks concern the entity's records.
    companions: ClassVar[tuple[type[Record], ...]] = ()
    is_sorted: ClassVar[bool] = False
    #: True when the host should also call :meth:`checkpoint` after every stored batch of
    #: a stream that is not sorted: its cursor is a position (a page link of a delta
    #: query), not a ``modified_at``. A retried or interrupted run then resumes from the
    #: last stored batch rather than from the previous run's state.
    resumable: ClassVar[bool] = False
    #: True when every run yields the whole data set (a file export): rows of this
    #: stream's entity that a completed run did not yield are then marked deleted.
    snapshot: ClassVar[bool] = False

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        """The stream's records, changed since ``state`` (everything when it is ``None``).

        A record that cannot be mapped is *yielded* as its :class:`~crmlink.InvalidRecord`
        (catch the exception the model's constructor raised and yield it): the host fails
        the run on it, or under ``--on-error skip`` counts it as skipped and reads on.
        *Raise* ``InvalidRecord`` only when the rest of the stream cannot be read (an
        unreadable file): the run fails, or under ``--on-error skip`` the stream ends
        there and, being incomplete, marks nothing deleted and saves no final state.
        """
        raise NotImplementedError

    def batches(self, state: Mapping[str, Any] | None) -> Iterable[RowBatch | Record | InvalidRecord] | None:
        """A faster way to read what :meth:`records` yields, or ``None`` (the default):
        the host then reads :meth:`records`.

        A stream of millions of rows can yield its records in :class:`~crmlink.RowBatch` es
        (tuples of values, no object per record), among single records and
        :class:`~crmlink.InvalidRecord` s, in the order :meth:`records` would: the host
        stores them exactly as those records. A batch's values must already be valid and
        canonical; validate them as the record's constructor would (a row that fails can
        be built as a record, to get its exact error).
        """
        return None

    def checkpoint(self, last: Record, state: Mapping[str, Any] | None) -> dict[str, Any]:
        """The state to save after ``last`` was stored (sorted and resumable streams).

        The default keeps ``last.modified_at`` as an inclusive lower bound for next time.
        """
        stamp = last.modified_at
        return {"since": stamp.isoformat() if stamp else None}

    def locate(self, remote_id: str) -> str | None:
        """Where a recently yielded record came from (``file:line``), for error messages."""
        return None

    def next_state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The state to save once the stream finished; ``None`` keeps the last checkpoint."""
        return None

    def remote_ids(self) -> Iterable[str] | None:
        """Every id of this stream's records that exists at the source right now, for
        full-id reconciliation (catching hard deletes an incremental read cannot see).

        The host calls it once the stream was read completely; stored live rows of this
        stream (see :meth:`owns`) whose ids are missing are then marked deleted. Return
        ``None`` (the default) when reconciliation was not asked for or the source cannot
        list its ids; snapshot streams never need it. List the ids cheaply (ids only, the
        largest page size) and completely: a partial list would delete what it missed.
        """
        return None

    def owns(self, remote_id: str) -> bool:
        """Whether a stored row of this stream's entity came from this stream. Override it
        when two streams share an entity (Salesforce Task and Event both store interactions),
        so one stream's reconciliation never deletes the other's rows."""
        return True


@dataclass(frozen=True)
class Check:
    """One line ``crmlink doctor`` shows about a source.

    ``topic`` is what was checked (``connect``, ``read``, ``API budget`` ...), ``status``
    one of ``ok``, ``warn`` and ``fail``, ``detail`` what was found and ``fix``, for a
    warning or a failure, what to do about it. A ``fail`` makes ``crmlink doctor`` exit 4.
    """

    topic: str
    status: str
    detail: str
    fix: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ("ok", "warn", "fail"):
            raise ValueError(f"Check status must be ok, warn or fail, not {self.status!r}")


class Connector:
    """Base class for connectors. Subclasses set ``name`` and ``settings``.

    ``atomic = True`` (file imports) stores the whole run in one transaction, so a bad
    record leaves the store exactly as it was. ``on_error`` is the default of
    ``--on-error``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    settings: ClassVar[tuple[Setting, ...]] = ()
    atomic: ClassVar[bool] = False
    #: What an invalid record does when the user does not say (``--on-error``): ``fail``,
    #: or ``skip`` for sources where messy items are normal (mailboxes).
    on_error: ClassVar[str] = "fail"

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = resolve_settings(self, config)
        self.context = SyncContext("")

    def prepare(self, context: SyncContext) -> None:
        """Called by the sync engine before :meth:`streams` with what the run knows
        beyond the settings (kept as ``self.context``). A connector that links its records
        to a CRM in the store (mail, calendar) builds its identity resolver here."""
        self.context = context

    def streams(self) -> Iterable[Stream]:
        raise NotImplementedError

    def classify_error(self, exc: BaseException) -> CrmlinkError | None:
        """Turn a client library's exception into a crmlink error class, or ``None``."""
        return None

    def diagnose(self) -> Iterable[Check]:
        """Check that the source can be reached and read, for ``crmlink doctor``: connect,
        what the credentials may read, the API budget left. Make few, cheap requests and
        read nothing into the store. An exception raised here is classified with
        :meth:`classify_error` and shown as a failed ``connect`` check. The default offers
        no checks."""
        return ()

    def secrets(self) -> list[str]:
        """The secret values this connector holds, so the host can redact them."""
        return [str(self.config[s.name]) for s in self.settings if s.secret and self.config.get(s.name)]


def resolve_settings(connector: Connector, config: Mapping[str, Any]) -> dict[str, Any]:
    """Apply defaults and check required settings; unknown keys are an error."""
    known = {s.name: s for s in connector.settings}
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ConfigError(
            f"connector {connector.name!r} has no setting {unknown[0]!r}; "
            f"its settings are: {', '.join(known) or 'none'}"
        )
    resolved = {name: config.get(name, s.default) for name, s in known.items()}
    for name, setting in known.items():
        if setting.required and resolved[name] in (None, ""):
            env = setting.envvar or envvar_for(connector.name, name)
            flag = name if setting.argument else "--" + name.replace("_", "-")
            raise ConfigError(f"{connector.name}: {flag} is required (or set {env})")
    return resolved


def envvar_for(connector_name: str, setting_name: str) -> str:
    return f"{connector_name}_{setting_name}".upper().replace("-", "_")
