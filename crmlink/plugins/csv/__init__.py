"""The CSV connector: a folder in crmlink's canonical CSV format (docs/csv-format.md).

Files are streamed row by row (never read whole), a UTF-8 byte-order mark is tolerated,
quoting follows RFC 4180, and list columns are ``;``-separated. Anything that cannot be
read raises :class:`~crmlink.InvalidRecord` located as ``file:line:column``. A run is
atomic: a bad row leaves the store as it was.
"""

from __future__ import annotations

import csv
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from crmlink import (
    Account,
    Competitor,
    ConfigError,
    Connector,
    Contact,
    Interaction,
    InvalidRecord,
    Lead,
    Opportunity,
    OpportunityContact,
    Record,
    RowBatch,
    Setting,
    Stream,
    SupportCase,
    User,
    classify_title,
    hookimpl,
    normalize_competitor,
    normalize_vocabulary,
)

#: Largest field accepted, in characters; larger ones are an error rather than a memory hog.
from crmlink.plugins.csv.columns import Column, Plan, Rejected, referenced
from crmlink.plugins.csv.ids import IdSet
from crmlink.plugins.csv.reader import forked

MAX_FIELD = 1_000_000
csv.field_size_limit(MAX_FIELD)


@dataclass(frozen=True)
class FileSpec:
    """One file of the format: its entity, column renames, references and soft vocabularies."""

    name: str
    entity: type[Record]
    required: tuple[str, ...] = ("id",)
    renames: Mapping[str, str] = field(default_factory=dict)
    #: field -> file whose ids it must name
    refs: Mapping[str, str] = field(default_factory=dict)
    #: vocabulary fields whose non-canonical values go to ``raw`` for the classify hook
    soft: tuple[str, ...] = ()


FILES: tuple[FileSpec, ...] = (
    FileSpec("accounts", Account, refs={"parent_id": "accounts", "owner_id": "users"}),
    FileSpec("users", User),
    FileSpec("contacts", Contact, required=("id", "account_id"),
             refs={"account_id": "accounts", "reports_to_id": "contacts"},
             soft=("department", "seniority", "buying_role")),
    FileSpec("opportunities", Opportunity, required=("id", "account_id"),
             renames={"stage": "stage_label"},
             refs={"account_id": "accounts", "owner_id": "users"}),
    FileSpec("opportunity_contacts", OpportunityContact, required=("opportunity_id", "contact_id"),
             refs={"opportunity_id": "opportunities", "contact_id": "contacts"}, soft=("role",)),
    FileSpec("interactions", Interaction, required=("id", "occurred_at"),
             renames={"duration": "duration_minutes"},
             refs={"account_id": "accounts", "opportunity_id": "opportunities",
                   "user_ids": "users", "contact_ids": "contacts"}),
    FileSpec("leads", Lead, refs={"owner_id": "users", "converted_opportunity_id": "opportunities"}),
    FileSpec("competitors", Competitor, required=("opportunity_id", "name"),
             refs={"opportunity_id": "opportunities"}),
    FileSpec("cases", SupportCase, required=("id", "account_id", "opened_at"),
             refs={"account_id": "accounts", "contact_id": "contacts"}),
)
_SOFT_VOCABULARY = {"role": "buying_role"}
#: First bytes of files often renamed .csv by mistake.
_NOT_CSV = ((b"\x89PNG", "a PNG image"), (b"%PDF", "a PDF document"), (b"\xff\xd8\xff", "a JPEG image"),
            (b"GIF8", "a GIF image"), (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)"),
            (b"\x1f\x8b", "a gzip archive"), (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) workbook"),
            (b"SQLite format 3", "an SQLite database"))
_RECENT = 10_000
#: The files whose ids a reference names: only theirs are kept (:class:`.IdSet`).
_REFERRED = frozenset(target for spec in FILES for target in spec.refs.values())
#: Rows validated together (:mod:`.columns`).
BATCH = 2000
#: Entities whose ids or stages are derived from other columns (:meth:`CsvStream._record`):
#: always read one record at a time (their files are small).
_DERIVED = (Opportunity, OpportunityContact, Competitor)
#: Whether streams read their files in a process of their own (:mod:`.reader`).
FORK = hasattr(os, "fork")
#: Bytes of lines decoded together (:meth:`CsvStream._lines`).
_BLOCK = 1 << 16
_REMOTE_ID = itemgetter(0)  # a row's first value (fields_of: remote_id first)


class _Reader(Protocol):
    """What ``csv.reader`` returns: rows, and the number of the last line read."""

    def __next__(self) -> list[str]: ...

    @property
    def line_num(self) -> int: ...


class CsvStream(Stream):
    """One file of the folder; an export is complete, so rows it lacks were deleted."""

    is_sorted = False
    snapshot = True

    def __init__(self, path: Path, spec: FileSpec, known: dict[str, IdSet], source: str = "") -> None:
        self.path, self.spec, self.known, self.source = path, spec, known, source
        self.name = spec.name
        self.entity = spec.entity
        #: remote id -> line, for the batches of the last :data:`_RECENT` rows or more
        self._recent: deque[dict[str, int]] = deque(maxlen=_RECENT // BATCH + 1)
        self._fields = set(spec.entity.__dataclass_fields__)
        #: rows :meth:`batches` validates together
        self.batch_rows = BATCH
        #: whether :meth:`batches` reads a file no other names in a process of its own
        self.fork = FORK

    def locate(self, remote_id: str) -> str | None:
        for seen in reversed(self._recent):
            line = seen.get(remote_id)
            if line:
                return f"{self.path}:{line}:1"
        return None

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        """The file one record at a time, each row through the record's constructor: the
        reference that :meth:`batches` (what a sync reads) must match exactly."""
        ids = self._ids()
        pending: list[tuple[str, int, str, str]] = []
        with self._open() as handle:
            reader = csv.reader(self._lines(handle), strict=True)
            header = self._header(reader)
            numbered = ((row, reader.line_num) for row in self._rows(reader))
            for item, _ in self._one_by_one(header, numbered, ids, pending):
                yield item
        self._check_pending(pending, header)

    def batches(self, state: Mapping[str, Any] | None) -> Iterator[RowBatch | Record | InvalidRecord]:
        """The file in batches of :attr:`batch_rows` rows, each validated a column at a time
        (:mod:`.columns`); a batch with any bad row is read one record at a time. The file
        is read in a process of its own (:mod:`.reader`, unless :attr:`fork` is off): its
        batches then come in the store's form."""
        if self.fork:
            yield from self._remembered(forked(self._located(state, stored=True)))
        else:
            for item, _ in self._located(state):
                yield item

    def _remembered(self, located: Iterator[tuple[RowBatch | Record | InvalidRecord, Any]]
                    ) -> Iterator[RowBatch | Record | InvalidRecord]:
        """The items read elsewhere, their lines kept for :meth:`locate` and their ids for
        the files that refer to them, as the reading here would have kept them."""
        ids = self._ids()
        seen: dict[str, int] | None = None
        for item, where in located:
            if isinstance(item, RowBatch):
                remote_ids = list(map(_REMOTE_ID, item.rows))
                if ids is not None:
                    ids.update(remote_ids)
                self._recent.append(dict(zip(remote_ids, where)))
                seen = None
            elif isinstance(item, Record):
                if ids is not None:
                    ids.add(item.remote_id)
                if seen is None or len(seen) >= self.batch_rows:
                    seen = {}
                    self._recent.append(seen)
                seen[item.remote_id] = where
            yield item

    def _located(self, state: Mapping[str, Any] | None, *, stored: bool = False
                 ) -> Iterator[tuple[RowBatch | Record | InvalidRecord, Any]]:
        """:meth:`batches`' items, each with where it was read: a record's line, a batch's
        lines (``None`` for an error); ``stored``: the batches in the store's form."""
        ids = self._ids()
        pending: list[tuple[str, int, str, str]] = []
        with self._open() as handle:
            reader = csv.reader(self._lines(handle), strict=True)
            header = self._header(reader)
            plan = None if self.entity in _DERIVED else Plan(
                self.entity, header, self.spec.renames,
                {name: _SOFT_VOCABULARY.get(name, name) for name in self.spec.soft}, self.source)
            rows: list[list[str]] = []
            lines: list[int] = []
            try:
                for row in reader:
                    if row and (row[0].strip() or "".join(row).strip()):  # not a blank line
                        rows.append(row)
                        lines.append(reader.line_num)
                        if len(rows) == self.batch_rows:
                            yield from self._batch(plan, header, rows, lines, ids, pending, stored)
                            rows, lines = [], []
            except (csv.Error, InvalidRecord) as exc:  # the rest is unreadable
                error = self._unreadable(exc, reader) if isinstance(exc, csv.Error) else exc
                yield from self._batch(plan, header, rows, lines, ids, pending, stored)  # the rows before it
                raise error from None
            yield from self._batch(plan, header, rows, lines, ids, pending, stored)
        self._check_pending(pending, header)

    def _ids(self) -> IdSet | None:
        """Where this file's ids are kept, when another file (or itself) refers to them."""
        return self.known.setdefault(self.name, IdSet()) if self.name in _REFERRED else None

    def _check_pending(self, pending: list[tuple[str, int, str, str]], header: list[str]) -> None:
        for column, line, value, target in pending:  # self-references, e.g. parent accounts
            known = self.known.get(target)
            if known is None or value not in known:
                raise self._error(None, column, line, header,
                                  f"refers to {target} id {value!r}, which is not in {target}.csv")

    def _batch(self, plan: Plan | None, header: list[str], rows: list[list[str]], lines: list[int],
               ids: IdSet | None, pending: list[tuple[str, int, str, str]], stored: bool
               ) -> Iterator[tuple[RowBatch | Record | InvalidRecord, Any]]:
        if not rows:
            return
        if plan is not None:
            try:
                batch, values = plan.batch(rows, stored=stored)
                pended = self._check_columns(plan, values, lines, ids)
            except (Rejected, ValueError, TypeError):
                pass  # some row is bad: read them one by one below, for its exact error
            else:
                remote_ids = plan.column(values, "remote_id")
                pending.extend(pended)
                if ids is not None:
                    ids.update(remote_ids)
                self._recent.append(dict(zip(remote_ids, lines)))
                yield batch, lines
                return
        yield from self._one_by_one(header, zip(rows, lines), ids, pending)

    def _one_by_one(self, header: list[str], numbered: Iterable[tuple[list[str], int]],
                    ids: IdSet | None, pending: list[tuple[str, int, str, str]]
                    ) -> Iterator[tuple[Record | InvalidRecord, int | None]]:
        """Rows (with their line numbers) through the record's constructor, one at a time,
        as they are read, each with its line (``None`` for an error); :meth:`locate` keeps
        the lines of the last few thousand."""
        seen: dict[str, int] = {}
        self._recent.append(seen)
        for row, line in numbered:
            try:
                record = self._record(header, row, line, pending)
            except InvalidRecord as exc:
                yield exc, None  # the host fails or skips it; the file goes on
                continue
            if ids is not None:
                ids.add(record.remote_id)
            if len(seen) >= self.batch_rows:
                seen = {}
                self._recent.append(seen)
            seen[record.remote_id] = line
            yield record, line

    def _check_columns(self, plan: Plan, values: list[Column], lines: list[int],
                       ids: IdSet | None) -> list[tuple[str, int, str, str]]:
        """Check a batch's references (:meth:`_check_refs`, a column at a time): raise
        :class:`Rejected` when one names a missing record; the self-references to ids
        not read yet, to check at the end of the file."""
        pended: list[tuple[str, int, str, str]] = []
        for name, target in self.spec.refs.items():
            known = self.known.get(target)
            if known is None:
                continue
            column = plan.column(values, name)
            if target != self.name:
                if known.missing(referenced(column)):
                    raise Rejected(f"{name} names a missing {target} id")
                continue
            batch_ids = set(plan.column(values, "remote_id"))
            later = known.missing(referenced(column)) - batch_ids
            if later:
                pended.extend((name, line, value, target)
                              for value, line in zip(column, lines) if value in later)
        return pended

    def _open(self) -> BinaryIO:
        return open(self.path, "rb")

    def _lines(self, handle: BinaryIO) -> Iterator[str]:
        """The file's lines decoded, a block of lines at a time (:meth:`_block`); line by
        line where a block has a bad line, so that the error is located exactly."""
        first = handle.readline()
        if not first:
            return
        if first.startswith(b"\xef\xbb\xbf"):
            first = first[3:]
        self._not_csv(first)
        yield self._decoded(1, first)
        number = 2
        while block := handle.readlines(_BLOCK):
            lines = self._block(block)
            if lines is not None:
                yield from lines
            else:  # line by line, as they are read: an error comes after the lines before it
                for at, data in enumerate(block, start=number):
                    yield self._decoded(at, data)
            number += len(block)

    @staticmethod
    def _block(block: list[bytes]) -> list[str] | None:
        """A block of lines decoded at once, or ``None`` when one would not decode alone
        (:meth:`_decoded` then finds which) or the text would not split into the same lines
        (a line break other than the lines' own ``\\n`` or ``\\r\\n``)."""
        try:
            text = b"".join(block).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if "\x00" in text:
            return None
        lines = text.splitlines(keepends=True)
        return lines if len(lines) == len(block) else None

    def _decoded(self, number: int, data: bytes) -> str:
        """Line ``number``, decoded; an encoding error or a NUL located exactly."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            column = data[:exc.start].count(b",") + 1
            raise InvalidRecord(self.name, None, "encoding", (
                f"byte {exc.start + 1} of the line is not UTF-8 ({exc.reason}); save the file as UTF-8"
            )).at(f"{self.path}:{number}:{column}") from None
        if "\x00" in text:
            raise InvalidRecord(self.name, None, "format", (
                "the line contains NUL bytes; this does not look like a CSV text file"
            )).at(f"{self.path}:{number}:{text[:text.index(chr(0))].count(',') + 1}")
        return text

    def _not_csv(self, first: bytes) -> None:
        """Name what the file is when its first line shows it is not CSV at all."""
        kind = next((name for magic, name in _NOT_CSV if first.startswith(magic)), None)
        if kind is None and first.lstrip()[:1] in (b"{", b"["):
            kind = "JSON"
        if kind:
            raise InvalidRecord(self.name, None, "format", (
                f"this is {kind}, not a CSV file; export {self.name} as CSV (UTF-8, a header row)"
            )).at(f"{self.path}:1:1")

    def _rows(self, reader: _Reader) -> Iterator[list[str]]:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise self._unreadable(exc, reader) from None
            if row and any(cell.strip() for cell in row):
                yield row

    def _unreadable(self, exc: csv.Error, reader: _Reader) -> InvalidRecord:
        return InvalidRecord(self.name, None, "format", (
            f"not readable as CSV ({exc}); check quoting and that this is a CSV file"
        )).at(f"{self.path}:{reader.line_num}:1")

    def _header(self, reader: _Reader) -> list[str]:
        try:
            header = next(self._rows(reader))
        except StopIteration:
            raise InvalidRecord(self.name, None, "header", (
                f"the file is empty; it needs a header row with at least: {', '.join(self.spec.required)}"
            )).at(f"{self.path}:1:1") from None
        header = [h.strip().lower() for h in header]
        for column in self.spec.required:
            if column not in header:
                raise InvalidRecord(self.name, None, column, (
                    f"required column {column!r} is missing; the header has: {', '.join(header)}"
                )).at(f"{self.path}:1:{len(header) + 1}")
        seen: set[str] = set()
        for index, column in enumerate(header):
            if column in seen:
                raise InvalidRecord(self.name, None, column, "column appears twice in the header").at(
                    f"{self.path}:1:{index + 1}")
            seen.add(column)
        return header

    def _record(self, header: list[str], row: list[str], line: int,
                pending: list[tuple[str, int, str, str]]) -> Record:
        if len(row) != len(header):
            raise InvalidRecord(self.name, row[0] if row else None, "row", (
                f"has {len(row)} fields but the header has {len(header)}; check for an unquoted "
                "comma or a missing field")).at(f"{self.path}:{line}:{min(len(row), len(header)) + 1}")
        values: dict[str, Any] = {}
        extra: dict[str, str] = {}
        raw: dict[str, str] = {}
        for column, cell in zip(header, row):
            name = "remote_id" if column == "id" else self.spec.renames.get(column, column)
            if name in self._fields and name not in ("extra", "raw", "source", "deleted"):
                values[name] = cell
            elif cell != "":
                extra[column] = cell
        if self.spec.entity is OpportunityContact:
            values["remote_id"] = f"{values.get('opportunity_id', '')}:{values.get('contact_id', '')}"
        if self.spec.entity is Competitor and not values.get("remote_id"):
            name = normalize_competitor(values.get("name")) or ""
            values["remote_id"] = f"{values.get('opportunity_id', '')}:{name}"
        if self.spec.entity is Opportunity and values.get("stage_label"):
            values["stage_id"] = values["stage_label"]
        for name in self.spec.soft:
            self._soften(name, values, raw)
        try:
            record = self.spec.entity(**values, extra=extra, raw=raw)
        except InvalidRecord as exc:
            raise self._error(exc.remote_id, self._column_of(exc.field), line, header, exc.reason) from None
        self._check_refs(record, line, header, pending)
        return record

    def _soften(self, name: str, values: dict[str, Any], raw: dict[str, str]) -> None:
        value = values.get(name)
        if not value:
            return
        vocabulary = _SOFT_VOCABULARY.get(name, name)
        try:
            normalize_vocabulary(vocabulary, value)
        except ValueError:
            raw[vocabulary] = value
            # a deal's contact role has no classify hook of its own: map the label here
            values[name] = classify_title(None, role=value).buying_role if name == "role" else None

    def _column_of(self, field_name: str) -> str:
        if field_name == "remote_id":
            return "id"
        for column, target in self.spec.renames.items():
            if target == field_name:
                return column
        return field_name

    def _check_refs(self, record: Record, line: int, header: list[str],
                    pending: list[tuple[str, int, str, str]]) -> None:
        for name, target in self.spec.refs.items():
            value = getattr(record, name)
            if not value or target not in self.known:
                continue
            for one in value if isinstance(value, tuple) else (value,):
                if one in self.known[target]:
                    continue
                if target == self.name:
                    pending.append((name, line, one, target))
                    continue
                raise self._error(record.remote_id, self._column_of(name), line, header,
                                  f"refers to {target} id {one!r}, which is not in {target}.csv")

    def _error(self, remote_id: str | None, column: str, line: int, header: list[str],
               reason: str) -> InvalidRecord:
        col = header.index(column) + 1 if column in header else 1
        return InvalidRecord(self.spec.entity.entity, remote_id, column, reason).at(
            f"{self.path}:{line}:{col}")


class CsvConnector(Connector):
    """Reads a folder of CSV files in crmlink's canonical format."""

    name = "csv"
    description = "A folder of CSV files in crmlink's canonical format (docs/csv-format.md)."
    settings = (Setting("path", "The folder holding accounts.csv and the other files.",
                        required=True, argument=True),)
    atomic = True
    #: The class of its streams.
    stream = CsvStream

    def streams(self) -> Iterator[Stream]:
        folder = Path(self.config["path"])
        if not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder; give the folder that holds accounts.csv")
        if not (folder / "accounts.csv").is_file():
            raise ConfigError(f"{folder} has no accounts.csv, the one file the CSV format requires")
        known: dict[str, IdSet] = {}
        for spec in FILES:
            path = folder / f"{spec.name}.csv"
            if path.is_file():
                yield self.stream(path, spec, known, self.context.source)


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    register(CsvConnector)


__all__ = ["CsvConnector", "FILES"]
