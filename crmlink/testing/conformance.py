"""The connector conformance kit: standard tests every connector should pass.

Subclass :class:`ConnectorContract` in a test module, name your connector and a config
that works offline, and pytest collects the checks below::

    from crmlink.testing.conformance import ConnectorContract, SuiteConfig

    class TestPipedrive(ConnectorContract):
        connector = PipedriveConnector
        config = {"path": FIXTURES}
        suite = SuiteConfig(max_records=500)

The kit reads every stream the way the sync engine does (in order, one connector
instance per run, ``checkpoint()`` after every record of a sorted stream, then
``next_state()``), keeps what it saw, and checks invariants rather than counts. Add your
own ``test_*`` methods to the subclass; the ``first_run`` and ``second_run`` fixtures
give you the records. docs/plugins/testing.md describes every check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

try:
    import pytest
except ImportError as exc:  # pragma: no cover - exercised in a venv without pytest
    raise ImportError("crmlink's conformance kit runs under pytest, which is not installed: "
                      "pip install 'crmlink[testing]' (or your plugin's test extra)") from exc

from crmlink.core.connector import Connector, Setting, Stream
from crmlink.core.errors import CrmlinkError, InvalidRecord
from crmlink.core.model import Record, parse_datetime

#: A setting whose name contains one of these must be declared ``secret=True``.
SECRET_WORDS = ("token", "password", "passwd", "secret", "key")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class SuiteConfig:
    """Knobs of the standard tests.

    ``max_records``: stop reading a stream after this many records (both runs).
    ``ignore_empty_streams``: an empty stream is not a failure (``empty_streams`` lists
    the streams allowed to be empty when this is false).
    ``incremental_streams``: streams checked by the second-run test; ``None`` means
    every stream with ``is_sorted = True``.
    ``expected_deleted``: stream name -> remote ids the fixture holds as deleted; each
    must be yielded with ``deleted=True``.
    ``not_secret``: setting names that contain a secret word but are not secrets
    (``key_field``, say).
    """

    max_records: int = 20_000
    ignore_empty_streams: bool = False
    empty_streams: tuple[str, ...] = ()
    incremental_streams: tuple[str, ...] | None = None
    expected_deleted: Mapping[str, frozenset[str] | set[str] | tuple[str, ...]] = field(default_factory=dict)
    not_secret: tuple[str, ...] = ()


@dataclass
class StreamRun:
    """What one stream yielded in one run."""

    name: str
    entity: type[Record]
    is_sorted: bool
    state_in: Mapping[str, Any] | None
    #: every record yielded, the entity's and its companions', in order
    records: list[Record] = field(default_factory=list)
    #: records the stream yielded as :class:`~crmlink.InvalidRecord` (a fixture should have none)
    invalid: list[InvalidRecord] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    state_out: dict[str, Any] | None = None
    truncated: bool = False
    #: the other record types the stream declares (:attr:`crmlink.Stream.companions`)
    companions: tuple[type[Record], ...] = ()

    def own(self) -> list[Record]:
        """The records of the stream's entity, without its companions."""
        return [r for r in self.records if isinstance(r, self.entity)]


def read_stream(stream: Stream, state: Mapping[str, Any] | None, max_records: int) -> StreamRun:
    """Read one stream like the sync engine, checkpointing after every record of a
    sorted stream (the strictest batch size)."""
    run = StreamRun(stream.name, stream.entity, stream.is_sorted, state, companions=stream.companions)
    iterator = iter(stream.records(state))
    try:
        for record in iterator:
            if isinstance(record, InvalidRecord):
                run.invalid.append(record)
                continue
            run.records.append(record)
            if stream.is_sorted:
                run.checkpoints.append(stream.checkpoint(record, state))
            if len(run.records) >= max_records:
                run.truncated = True
                break
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    final = stream.next_state(state)
    if final is None and run.records and not stream.is_sorted:
        final = stream.checkpoint(run.records[-1], state)
    if final is None:
        final = run.checkpoints[-1] if run.checkpoints else (dict(state) if state else None)
    run.state_out = final
    return run


def read_connector(connector: Connector, states: Mapping[str, Any] | None = None,
                   max_records: int = 20_000) -> dict[str, StreamRun]:
    """Read every stream of ``connector`` in order; ``states`` maps stream name to the
    state saved by a previous run."""
    runs: dict[str, StreamRun] = {}
    for stream in connector.streams():
        assert stream.name not in runs, f"stream {stream.name!r} is offered twice by streams()"
        runs[stream.name] = read_stream(stream, (states or {}).get(stream.name), max_records)
    return runs


def _comparable(value: Any) -> Any:
    """A state value in a form that orders correctly, or ``None`` if it has no order."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, datetime)):
        return value
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            return value
    return None


def state_went_back(before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """The first key whose value decreased between two states, if any. Keys whose values
    have no order (lists, dicts, booleans, mixed types) are not compared."""
    for key in before.keys() & after.keys():
        old, new = _comparable(before[key]), _comparable(after[key])
        if old is None or new is None or type(old) is not type(new):
            continue
        if new < old:
            return key
    return None


class ConnectorContract:
    """Standard tests for a connector. Set ``connector`` and ``config`` in a subclass."""

    connector: ClassVar[type[Connector]]
    config: ClassVar[Mapping[str, Any]] = {}
    suite: ClassVar[SuiteConfig] = SuiteConfig()
    #: (exception, expected crmlink error class) pairs ``classify_error`` must map
    errors: ClassVar[tuple[tuple[BaseException, type[CrmlinkError]], ...]] = ()

    # -- fixtures ---------------------------------------------------------------------------

    def make_connector(self) -> Connector:
        """A fresh connector instance; override to pass a client stub or similar."""
        return self.connector(dict(self.config))

    # Class-scoped fixtures are class methods (pytest 10 drops instance-method ones); a
    # throwaway instance calls make_connector so subclasses may keep overriding it.

    @pytest.fixture(scope="class")
    @classmethod
    def first_run(cls) -> dict[str, StreamRun]:
        """Every stream read from scratch (no saved state)."""
        return read_connector(cls().make_connector(), None, cls.suite.max_records)

    @pytest.fixture(scope="class")
    @classmethod
    def second_run(cls, first_run: dict[str, StreamRun]) -> dict[str, StreamRun]:
        """Every stream read again by a new instance, from the state the first run saved."""
        states = {name: run.state_out for name, run in first_run.items()}
        return read_connector(cls().make_connector(), states, cls.suite.max_records)

    # -- declaration ------------------------------------------------------------------------

    def test_connector_is_a_connector(self) -> None:
        assert isinstance(self.connector, type) and issubclass(self.connector, Connector), (
            f"{self.connector!r} must subclass crmlink.Connector")

    def test_name_is_valid(self) -> None:
        name = self.connector.name
        assert isinstance(name, str) and NAME_PATTERN.match(name), (
            f"connector name {name!r} must be lower-case letters, digits, '-' or '_', starting "
            "with a letter (it is a CLI subcommand and an environment-variable prefix)")

    def test_name_does_not_clash_with_a_builtin(self) -> None:
        from crmlink.core.host import get_plugin_host

        builtins = get_plugin_host(load_entrypoints=False).connectors()
        other = builtins.get(self.connector.name)
        assert other is None or other is self.connector, (
            f"connector name {self.connector.name!r} is already used by the built-in "
            f"{other.__module__}.{other.__name__}; pick another name")

    def test_settings_are_declared(self) -> None:
        settings = self.connector.settings
        assert isinstance(settings, tuple), f"{self.connector.name}.settings must be a tuple of Setting"
        names = [s.name for s in settings]
        for setting in settings:
            assert isinstance(setting, Setting), f"{self.connector.name}.settings holds {setting!r}, not a Setting"
            assert setting.name.isidentifier(), (
                f"setting {setting.name!r} of {self.connector.name} must be a Python identifier")
            assert names.count(setting.name) == 1, f"setting {setting.name!r} is declared twice"
        assert set(self.config) <= set(names), (
            f"the test config uses {sorted(set(self.config) - set(names))}, which "
            f"{self.connector.name} does not declare")

    def test_secrets_are_marked(self) -> None:
        for setting in self.connector.settings:
            lowered = setting.name.lower()
            if any(word in lowered for word in SECRET_WORDS) and setting.name not in self.suite.not_secret:
                assert setting.secret, (
                    f"setting {setting.name!r} of {self.connector.name} looks like a secret; declare "
                    "it with secret=True (or list it in SuiteConfig.not_secret)")

    def test_config_is_accepted(self) -> None:
        connector = self.make_connector()
        for setting in self.connector.settings:
            assert setting.name in connector.config, (
                f"{self.connector.name}: resolved config lacks setting {setting.name!r}")

    def test_streams_are_declared(self) -> None:
        streams = list(self.make_connector().streams())
        assert streams, f"{self.connector.name}.streams() yielded no stream"
        for stream in streams:
            assert isinstance(stream, Stream), f"{stream!r} is not a crmlink.Stream"
            assert stream.name and NAME_PATTERN.match(stream.name), (
                f"stream name {stream.name!r} must be lower-case letters, digits, '-' or '_'")
            assert isinstance(stream.entity, type) and issubclass(stream.entity, Record) \
                and stream.entity is not Record, (
                f"stream {stream.name!r}: entity must be a canonical record class such as "
                f"crmlink.Account, not {stream.entity!r}")

    # -- errors -----------------------------------------------------------------------------

    def test_generic_error_is_not_misclassified(self) -> None:
        found = self.make_connector().classify_error(Exception("something unexpected"))
        assert found is None or isinstance(found, CrmlinkError), (
            f"{self.connector.name}.classify_error(Exception(...)) must return a crmlink error "
            f"(RetriableError, FatalError, AuthError, ...) or None, not {found!r}")

    def test_errors_are_classified(self) -> None:
        connector = self.make_connector()
        for exc, expected in self.errors:
            found = connector.classify_error(exc)
            assert isinstance(found, expected), (
                f"{self.connector.name}.classify_error({exc!r}) returned {found!r}; "
                f"expected a {expected.__name__}")

    # -- records ----------------------------------------------------------------------------

    def test_streams_return_records(self, first_run: dict[str, StreamRun]) -> None:
        if self.suite.ignore_empty_streams:
            return
        for name, run in first_run.items():
            if name not in self.suite.empty_streams:
                assert run.records, (
                    f"stream {name!r} returned no records; fix the fixture or list it in "
                    "SuiteConfig.empty_streams")

    def test_records_are_canonical(self, first_run: dict[str, StreamRun]) -> None:
        for name, run in first_run.items():
            assert not run.invalid, (
                f"stream {name!r} yielded {len(run.invalid)} invalid record(s), the first: "
                f"{run.invalid[0]}; fix the fixture or the mapping")
            for record in run.records:
                assert isinstance(record, (run.entity, *run.companions)), (
                    f"stream {name!r} yielded {type(record).__name__} {getattr(record, 'remote_id', '?')!r}; "
                    f"it declares entity {run.entity.__name__}"
                    + (f" and companions {', '.join(c.__name__ for c in run.companions)}" if run.companions
                       else " (list other types it yields in Stream.companions)"))
                assert isinstance(record.remote_id, str) and record.remote_id, (
                    f"stream {name!r}: field 'remote_id' is empty")
                assert isinstance(record.deleted, bool), (
                    f"stream {name!r}, record {record.remote_id!r}: field 'deleted' must be a bool")
                stamp = record.modified_at
                assert stamp is None or (isinstance(stamp, datetime) and stamp.tzinfo is not None), (
                    f"stream {name!r}, record {record.remote_id!r}: field 'modified_at' must be "
                    "an aware datetime or None")

    def test_primary_keys_are_unique(self, first_run: dict[str, StreamRun]) -> None:
        for name, run in first_run.items():
            seen: set[tuple[str, str]] = set()
            for record in run.records:
                key = (record.entity, record.remote_id)
                assert key not in seen, (
                    f"stream {name!r}: field 'remote_id' value {record.remote_id!r} of a "
                    f"{type(record).__name__} is yielded twice")
                seen.add(key)

    def test_sorted_streams_are_sorted(self, first_run: dict[str, StreamRun]) -> None:
        for name, run in first_run.items():
            if not run.is_sorted:
                continue
            previous: datetime | None = None
            for record in run.own():
                stamp = record.modified_at
                assert stamp is not None, (
                    f"sorted stream {name!r}, record {record.remote_id!r}: field 'modified_at' is "
                    "missing; sorted streams are checkpointed on it")
                assert previous is None or stamp >= previous, (
                    f"sorted stream {name!r}: field 'modified_at' goes back from {previous} to "
                    f"{stamp} at record {record.remote_id!r}")
                previous = stamp

    def test_checkpoints_never_go_back(self, first_run: dict[str, StreamRun]) -> None:
        for name, run in first_run.items():
            for index in range(1, len(run.checkpoints)):
                before, after = run.checkpoints[index - 1], run.checkpoints[index]
                key = state_went_back(before, after)
                assert key is None, (
                    f"sorted stream {name!r}: checkpoint field {key!r} goes back from "
                    f"{before[key]!r} to {after[key]!r} at record {run.records[index].remote_id!r}")
            if run.checkpoints and run.state_out:
                key = state_went_back(run.checkpoints[-1], run.state_out)
                assert key is None, (
                    f"stream {name!r}: next_state() field {key!r} is behind the last checkpoint")

    def test_deleted_records_are_marked(self, first_run: dict[str, StreamRun]) -> None:
        for name, expected in self.suite.expected_deleted.items():
            assert name in first_run, f"SuiteConfig.expected_deleted names stream {name!r}, which does not exist"
            found = {r.remote_id: r for r in first_run[name].own()}
            for remote_id in expected:
                assert remote_id in found, f"stream {name!r}: deleted record {remote_id!r} was not yielded"
                assert found[remote_id].deleted is True, (
                    f"stream {name!r}, record {remote_id!r}: field 'deleted' must be True")

    def test_second_run_resumes(self, first_run: dict[str, StreamRun],
                                second_run: dict[str, StreamRun]) -> None:
        """From the saved state, an incremental stream yields no record of the first run
        again unchanged, except those at the inclusive boundary: records whose
        ``modified_at`` equals the latest ``modified_at`` of the first run."""
        wanted = self.suite.incremental_streams
        for name, run in first_run.items():
            if (name not in wanted) if wanted is not None else not run.is_sorted:
                continue
            if run.truncated:
                continue  # the boundary is unknown when the first run was cut short
            stamps = [r.modified_at for r in run.own() if r.modified_at is not None]
            boundary = max(stamps) if stamps else None
            seen = {(r.remote_id, r.modified_at) for r in run.own()}
            for record in second_run[name].own():
                if (record.remote_id, record.modified_at) not in seen:
                    continue  # new or changed since
                assert boundary is not None and record.modified_at == boundary, (
                    f"stream {name!r}: the second run from state {run.state_out!r} yields record "
                    f"{record.remote_id!r} again with field 'modified_at' {record.modified_at}, "
                    f"before the saved boundary {boundary}")


__all__ = ["ConnectorContract", "SuiteConfig", "StreamRun", "read_connector", "read_stream",
           "state_went_back", "SECRET_WORDS"]
