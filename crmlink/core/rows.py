"""Records as plain tuples: the fast path for connectors that read millions of rows.

A :class:`RowBatch` carries records of one entity as tuples of their field values, with
no record object per row. A stream offers batches through
:meth:`crmlink.Stream.batches`; the host writes them with the same upsert as records
(:meth:`crmlink.core.store.Store.upsert_rows`, which :meth:`~crmlink.core.store.Store.upsert`
uses too). The values must be exactly what the record's constructor would have made of
the input: the host does not validate them again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from crmlink.core.model import Record

Row = tuple[Any, ...]


_FIELDS: dict[type[Record], tuple[str, ...]] = {}
_GETTERS: dict[type[Record], Callable[[Record], Row]] = {}


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
        """The rows as record objects (not validated again)."""
        names = fields_of(self.entity)
        return [trusted(self.entity, names, row) for row in self.rows]

    def record(self, index: int) -> Record:
        """One row as a record object."""
        return trusted(self.entity, fields_of(self.entity), self.rows[index])


def trusted(entity: type[Record], names: Sequence[str], values: Sequence[Any]) -> Record:
    """A record of ``entity`` holding ``values`` as they are, without validation."""
    record = object.__new__(entity)
    for name, value in zip(names, values):
        object.__setattr__(record, name, value)
    return record
