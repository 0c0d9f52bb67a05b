"""Rows of a CSV file validated a column at a time, into the tuples of a RowBatch.

A :class:`Plan` is made once per file from its header: for each field of the entity,
the column that feeds it and what is done to the column's cells. Most columns of an
export repeat a few values (kinds, directions, account ids, people), so each distinct
cell is coerced once; a column whose cells are mostly distinct (times, subjects) is
coerced cell by cell. References are checked with set differences.

The plan only ever accepts rows: anything it does not accept (a bad value, a missing
reference, a short row) raises :class:`Rejected`, and the reader then reads those rows
one record at a time, which gives each bad row its exact, located error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from itertools import chain, repeat
from operator import attrgetter
from typing import Any

from crmlink import (
    Account,
    Interaction,
    Record,
    RowBatch,
    classify_title,
    fields_of,
    normalize_vocabulary,
)

#: Fields a CSV column never fills (they go to ``extra``): the host sets them.
RESERVED = ("extra", "raw", "source", "deleted")
#: Distinct values remembered per column; a column with more is coerced cell by cell.
CACHE = 4096
_MISSING = object()

Column = Sequence[Any]


class Rejected(Exception):
    """Some rows of the batch are not valid as they stand: read them one by one."""


class _Cached:
    """A coercer applied once per distinct cell, while the column repeats itself."""

    def __init__(self, coerce: Callable[[Any], Any],
                 every: Callable[[Column], list[Any]] | None = None) -> None:
        self.coerce = coerce
        #: the coercer over a whole column, where there is a faster one than a call a cell
        self.every = every or (lambda cells: list(map(coerce, cells)))
        self.seen: dict[str, Any] | None = {}

    def __call__(self, cells: Column) -> list[Any]:
        seen = self.seen
        if seen is None:
            return self.every(cells)
        out = list(map(seen.get, cells, repeat(_MISSING)))
        if _MISSING in out:
            for index, cell in enumerate(cells):
                if out[index] is _MISSING:
                    out[index] = seen[cell] = self.coerce(cell)
            if len(seen) > CACHE:  # mostly distinct: not worth remembering
                self.seen = None
        return out


def _stripped(cells: Column) -> list[str | None]:
    """``str | None`` fields: the record's ``parse_str`` of a cell."""
    return [cell.strip() or None for cell in cells]


#: The ASCII characters ``str.strip`` strips.
_ASCII_BLANKS = tuple(c for c in map(chr, range(128)) if c.isspace())


def _tidy(cells: Column) -> bool:
    """Whether ``parse_list`` of each cell is a mere split at ``;``: ASCII cells with no
    blank to strip and no empty id (``;`` next to another or at a cell's ends). The cells
    are checked joined by NUL, which no cell holds (the reader refuses such a line)."""
    joined = "\x00".join(cells)
    return (joined.isascii() and not any(blank in joined for blank in _ASCII_BLANKS)
            and not joined.startswith(";") and not joined.endswith(";")
            and ";;" not in joined and ";\x00" not in joined and "\x00;" not in joined)


def _split(cells: Column) -> list[tuple[str, ...]]:
    """Id-list fields: the record's ``parse_list`` of a cell; a plain split when the
    column is :func:`_tidy` (an export's usual spelling)."""
    if _tidy(cells):
        return [tuple(cell.split(";")) if cell else () for cell in cells]
    strip = str.strip
    return [tuple(filter(None, map(strip, cell.split(";")))) if cell else () for cell in cells]


_TZINFO = attrgetter("tzinfo")


def _timer(coerce: Callable[[Any], Any]) -> Callable[[Column], list[Any]]:
    """Time fields: ``coerce`` (the record's ``parse_datetime``) over a column. A cell that
    ``datetime.fromisoformat`` reads as a UTC time (``2024-03-31T09:30:00Z``, ``...+00:00``)
    is what ``parse_datetime`` makes of it, so a column of such cells is read by that
    alone; any other column (a blank, another offset, a bad cell) goes cell by cell
    through ``coerce``."""
    def every(cells: Column) -> list[Any]:
        try:
            times = list(map(datetime.fromisoformat, cells))
        except ValueError:
            return list(map(coerce, cells))
        if set(map(_TZINFO, times)) == {timezone.utc}:
            return times
        return list(map(coerce, cells))

    return every


class Plan:
    """How one file's rows become rows of ``entity`` (see the module's docstring)."""

    def __init__(self, entity: type[Record], header: Sequence[str], renames: Mapping[str, str],
                 soft: Mapping[str, str], source: str) -> None:
        self.entity, self.width, self.source = entity, len(header), source
        self.fields = fields_of(entity)
        where: dict[str, int] = {}
        self.extra: list[tuple[str, int]] = []
        for index, column in enumerate(header):
            name = "remote_id" if column == "id" else renames.get(column, column)
            if name in self.fields and name not in RESERVED:
                where[name] = index  # as in a dict of the row: the last column of a name wins
            else:
                self.extra.append((column, index))
        #: soft vocabulary fields: their column and the vocabulary whose misses go to raw
        self.soft = {name: (where[name], vocabulary) for name, vocabulary in soft.items() if name in where}
        self.where = where
        self.columns: list[Callable[[list[Column]], Column] | Any] = [
            self._column(name) for name in self.fields]

    def _column(self, name: str) -> Callable[[list[Column]], Column] | Any:
        """A function from the file's columns to the field's values, or the one value the
        field takes on every row (a field without a column: its default, coerced)."""
        coerce = self.entity.coercer(name)
        if name == "remote_id":
            return self._ids
        if name == "extra":
            return self._extras
        if name == "source":
            return self.source
        if name == "raw":
            return None  # made with the soft vocabulary fields
        if name in self.soft:
            return self._softened(name, coerce)
        index = self.where.get(name)
        if index is None:
            default = self.entity.__dataclass_fields__[name].default
            try:
                return coerce(default)
            except (TypeError, ValueError):
                return _Always()
        if coerce is _STR:
            return lambda columns: _stripped(columns[index])
        every = _split if coerce is _LIST else _timer(coerce) if coerce in _TIMES else None
        cached = _Cached(coerce, every)
        return lambda columns: cached(columns[index])

    def _ids(self, columns: list[Column]) -> Column:
        ids = _stripped(columns[self.where["remote_id"]])
        if not all(ids):
            raise Rejected("a row without an id")
        return ids

    def _extras(self, columns: list[Column]) -> Column:
        if not self.extra:
            return [{} for _ in columns[0]]
        picked = [(name, columns[index]) for name, index in self.extra]
        return [{name: cells[row] for name, cells in picked if cells[row] != ""}
                for row in range(len(columns[0]))]

    def _softened(self, name: str, coerce: Callable[[Any], Any]) -> Callable[[list[Column]], Column]:
        """A vocabulary field whose unknown terms keep their spelling in ``raw`` (the
        classify hook reads them there) and leave the field blank; a deal contact's role
        is mapped from its label here (it has no classify hook of its own)."""
        index, vocabulary = self.soft[name]

        def soften(cell: str) -> tuple[Any, str | None]:
            if not cell:
                return coerce(cell), None
            try:
                normalize_vocabulary(vocabulary, cell)
            except ValueError:
                return coerce(classify_title(None, role=cell).buying_role if name == "role" else None), cell
            return coerce(cell), None

        cached = _Cached(soften)
        return lambda columns: cached(columns[index])

    def batch(self, rows: list[list[str]], *, stored: bool = False) -> tuple[RowBatch, list[Column]]:
        """The rows as a batch (``stored``: in the store's form, :meth:`.RowBatch.stored`),
        and the values of each field; :class:`Rejected` (or the coercer's ``ValueError`` or
        ``TypeError``) when any row is not valid as it stands."""
        if set(map(len, rows)) != {self.width}:
            raise Rejected("a row of another width")
        columns: list[Column] = list(zip(*rows))
        n = len(rows)
        values: list[Column] = []
        # stored rows keep no dict (an empty one is stored as NULL): one serves every row
        shared = stored and not self.soft
        raw: list[dict[str, str]] = [{}] * n if shared else [{} for _ in range(n)]
        for name, make in zip(self.fields, self.columns):
            if isinstance(make, _Always):
                raise Rejected(f"{name} has no valid default")
            if name == "raw":
                values.append(raw)
            elif name == "extra" and stored and not self.extra:
                values.append([{}] * n)
            elif not callable(make):
                values.append([make] * n)
            elif name in self.soft:
                pairs = make(columns)
                values.append([value for value, _ in pairs])
                vocabulary = self.soft[name][1]
                for row, (_, spelled) in enumerate(pairs):
                    if spelled is not None:
                        raw[row][vocabulary] = spelled
            else:
                values.append(make(columns))
        return RowBatch.of_columns(self.entity, values, stored=stored), values

    def column(self, values: list[Column], name: str) -> Column:
        """The values of field ``name`` in a batch's values."""
        return values[self.fields.index(name)]


def referenced(values: Column) -> set[str]:
    """The ids a reference column names (a single id or a tuple of them a row)."""
    found = {value for value in values if value}
    if found and isinstance(next(iter(found)), tuple):
        return set(chain.from_iterable(found))
    return found


class _Always:
    """A field without a column whose default is not valid: every row is rejected."""


#: The coercer of ``str | None`` fields (strip, blank is ``None``), applied inline.
_STR = Account.coercer("name")
#: The coercer of id-list fields (``tuple[str, ...]``).
_LIST = Interaction.coercer("user_ids")
#: The coercers of time fields, optional (``parse_datetime``) and required.
_TIMES = (Account.coercer("modified_at"), Interaction.coercer("occurred_at"))
