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
        return [trusted(self.entity, row) for row in self._canonical(self.rows)]

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
    found = _MAKERS.get(entity)
    if found is None:
        found = _MAKERS[entity] = record_maker(entity)
    return found(values)


def record_maker(entity: type[Record], processors: Sequence[Callable[[Any], Any] | None] | None = None
                 ) -> Callable[[Sequence[Any]], Record]:
    """A function ``values -> record of entity``, without ``__init__`` (no validation):
    each field's slot set to its value (in :func:`fields_of` order), through its
    processor where it has one; values of another length are refused (``ValueError``).
    A processor is not called for ``None`` (most such values are empty: dates, JSON, id
    lists) when what it makes of it is ``None``, a new empty dict each time or the empty
    tuple: the function makes that itself. Written as Python source for the entity's
    fields and compiled, as :mod:`dataclasses` makes ``__init__`` (a loop of ``setattr``
    cost four to five times as much)."""
    names = fields_of(entity)
    env: dict[str, Any] = {"new": object.__new__, "cls": entity}
    lines = ["def make(row):", f"    {', '.join(f'v{i}' for i in range(len(names)))}, = row", "    record = new(cls)"]
    for i, (name, processor) in enumerate(zip(names, processors or [None] * len(names), strict=True)):
        value = f"v{i}"
        if processor is not None:
            env[f"convert{i}"] = processor
            empty = _empty(processor)
            value = f"convert{i}({value})" if empty is None else f"{empty} if {value} is None else convert{i}({value})"
        lines.append(f"    record.{name} = {value}")
    lines.append("    return record")
    exec("\n".join(lines), env)  # noqa: S102 - the dataclass's own field names, no outside input
    return env["make"]  # type: ignore[no-any-return]


def _empty(processor: Callable[[Any], Any]) -> str | None:
    """The Python expression of what ``processor`` makes of ``None``, where it is one
    that makes an equal value each time (``None``; ``{}``, a new dict each time; ``()``),
    else ``None``."""
    first, second = processor(None), processor(None)
    if first is None:
        return "None"
    if first == {} and type(first) is dict and first is not second:
        return "{}"
    if first == () and type(first) is tuple:
        return "()"
    return None
