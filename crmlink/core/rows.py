"""Records as plain tuples: the fast path for connectors that read millions of rows.

A :class:`RowBatch` carries records of one entity as tuples of their field values, with
no record object per row. A stream offers batches through
:meth:`crmlink.Stream.batches`; the host writes them with the same upsert as records
(:meth:`crmlink.core.store.Store.upsert_rows`, which :meth:`~crmlink.core.store.Store.upsert`
uses too). The values must be exactly what the record's constructor would have made of
the input: the host does not validate them again.

A batch may also hold its rows in the form the store keeps them (:class:`StoredRows`,
:meth:`RowBatch.stored`): a reader in another process sends rows that way, since such rows
(numbers and text) cross a pipe at a tenth of the cost of the canonical values, and the
store then binds them without converting them again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from crmlink.core.model import Record

Row = tuple[Any, ...]


_FIELDS: dict[type[Record], tuple[str, ...]] = {}
_GETTERS: dict[type[Record], Callable[[Record], Row]] = {}
_MAKERS: dict[type[Record], Callable[[Sequence[Any]], Record]] = {}


def fields_of(entity: type[Record]) -> tuple[str, ...]:
    """The names of a row's values for ``entity``: every field of its dataclass, in
    declaration order (``remote_id``, ``source``, ``modified_at``, ``deleted``,
    ``extra``, ``raw``, then the entity's own)."""
    found = _FIELDS.get(entity)
    if found is None:
        found = _FIELDS[entity] = tuple(f.name for f in dataclasses.fields(entity))
    return found


def _getter(entity: type[Record]) -> Callable[[Record], Row]:
    found = _GETTERS.get(entity)
    if found is None:
        found = _GETTERS[entity] = attrgetter(*fields_of(entity))
    return found


def row_of(entity: type[Record], record: Record) -> Row:
    """The row of a record of ``entity``."""
    return _getter(entity)(record)


class StoredRows(list):  # type: ignore[type-arg]  # a list of Row
    """Rows whose values are as the store's column types turn them into stored values
    (each type's ``process_bind_param``, :func:`crmlink.core.upsert.decorator`): times as
    epoch seconds, id lists as ``;``-joined text, dicts as JSON text or ``None``, decimals
    as text. The store binds them without converting them again; anything else reads
    them as canonical values through :meth:`RowBatch.records`. A slice or copy of them
    must stay a :class:`StoredRows` (:func:`like`)."""


def like(rows: Sequence[Row], values: Iterable[Row]) -> list[Row]:
    """``values`` as a list of the same form as ``rows``: :class:`StoredRows` if they are."""
    return StoredRows(values) if isinstance(rows, StoredRows) else list(values)


@dataclass(frozen=True)
class RowBatch:
    """Validated records of one entity, each a tuple of the values of
    :func:`fields_of` ``(entity)`` in that order.

    Each value is in its canonical form, as the record would hold it: text stripped and
    ``None`` when blank, times as aware UTC datetimes, numbers as ``Decimal``, ``float``
    or ``int`` as the field says, id lists as tuples, vocabulary terms in their canonical
    spelling, ``extra`` and ``raw`` as dicts. A blank ``source`` is filled in by the host.
    """

    entity: type[Record]
    rows: list[Row]

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def of(cls, entity: type[Record], records: Sequence[Record]) -> RowBatch:
        """The batch of ``records`` (all of ``entity``)."""
        return cls(entity, list(map(_getter(entity), records)))

    def records(self) -> list[Record]:
        """The rows as record objects (not validated again; stored rows read back as
        canonical values)."""
        return list(map(_maker(self.entity), self._canonical(self.rows)))

    def record(self, index: int) -> Record:
        """One row as a record object."""
        return trusted(self.entity, self._canonical(like(self.rows, [self.rows[index]]))[0])

    def part(self, start: int, end: int | None = None) -> RowBatch:
        """The batch of rows ``start`` to ``end``, in the same form."""
        return RowBatch(self.entity, like(self.rows, self.rows[start:end]))

    @classmethod
    def of_columns(cls, entity: type[Record], columns: Sequence[Sequence[Any]], *, stored: bool = False) -> RowBatch:
        """The batch of rows whose values of each field (canonical) are ``columns``, in
        :func:`fields_of` order; ``stored``: its rows in the store's form (:meth:`stored`)."""
        if not stored:
            return cls(entity, list(zip(*columns)))
        from crmlink.core.upsert import decorator

        return cls(entity, decorator(entity.entity).columns(columns))  # type: ignore[attr-defined]

    def stored(self) -> RowBatch:
        """The batch with its rows in the store's form (:class:`StoredRows`)."""
        if isinstance(self.rows, StoredRows):
            return self
        from crmlink.core.upsert import decorator

        return RowBatch(self.entity, decorator(self.entity.entity)(self.rows))

    def _canonical(self, rows: list[Row]) -> Sequence[Row]:
        if not isinstance(rows, StoredRows):
            return rows
        from crmlink.core.upsert import undecorator

        return undecorator(self.entity.entity)(rows)


def trusted(entity: type[Record], values: Sequence[Any]) -> Record:
    """A record of ``entity`` holding ``values`` (one a field, in :func:`fields_of`
    order) as they are, without validation."""
    return _maker(entity)(values)


def _maker(entity: type[Record]) -> Callable[[Sequence[Any]], Record]:
    """``values -> record`` for :func:`trusted`: one assignment of every slot, compiled
    (a loop of ``setattr`` cost four times as much for an interaction's 19 fields)."""
    found = _MAKERS.get(entity)
    if found is None:
        targets = ", ".join(f"record.{name}" for name in fields_of(entity))
        source = f"def make(values):\n    record = new(cls)\n    {targets}, = values\n    return record"
        env: dict[str, Any] = {"new": object.__new__, "cls": entity}
        exec(source, env)  # noqa: S102 - the dataclass's own field names, no outside input
        found = _MAKERS[entity] = env["make"]
    return found
