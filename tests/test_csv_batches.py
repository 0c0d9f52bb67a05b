"""The CSV connector's fast path against its reference.

A sync reads each file in row batches validated a column at a time
(``CsvStream.batches``); ``CsvStream.records`` reads it one record at a time, each row
through the record's constructor. They must give the same records and the same located
errors for any file, and the same rows in every column of every table of the store.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlink import Interaction, InvalidRecord, Record, RowBatch
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from crmlink.core.sync import SyncEngine
from crmlink.plugins.csv import CsvConnector, CsvStream, columns, reader
from crmlink.testing.generate import generate
from crmlink.testing.postgres import Server
from tests.conftest import SAMPLE

#: sync_runs columns that differ between any two runs
RUN_CLOCK = {"started_at", "finished_at", "pid", "host"}


class OneByOneStream(CsvStream):
    """The reference: a CSV stream without row batches."""

    def batches(self, state: Mapping[str, Any] | None) -> None:
        return None


class OneByOne(CsvConnector):
    stream = OneByOneStream


def sync(connector: type[CsvConnector], folder: Path, url: str) -> None:
    engine = SyncEngine(Store(url), get_plugin_host(load_entrypoints=False), connector({"path": str(folder)}),
                        "csv")
    assert engine.run().status == "ok"


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of every row of every table (sync_runs without its clock and process)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name in sorted(sa.inspect(conn).get_table_names()):
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            columns = [c for c in table.columns if c.name not in RUN_CLOCK | {"updated_at"}]
            out[name] = sorted(map(tuple, conn.execute(sa.select(*columns))), key=repr)
    engine.dispose()
    return out


def exports(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    yield "sample", SAMPLE
    for people in ("default", "multiparty"):
        folder = tmp_path / people
        generate(folder, accounts=12, interactions=2500, profile=people)
        yield people, folder


def change(folder: Path, into: Path) -> Path:
    """A later export of ``folder``: an interaction changed, one gone and one new, a
    contact's title changed, a lead gone."""
    shutil.copytree(folder, into)
    edit(into / "interactions.csv", lambda header, body: [
        [*body[0][:header.index("subject")], "changed", *body[0][header.index("subject") + 1:]],
        *body[2:], ["NEW-1", *body[1][1:]]])
    edit(into / "contacts.csv", lambda header, body: [
        [*body[0][:header.index("title")], "Chief Procurement Officer", *body[0][header.index("title") + 1:]],
        *body[1:]])
    edit(into / "leads.csv", lambda header, body: body[:-1])
    return into


def edit(path: Path, change: Callable[[list[str], list[list[str]]], list[list[str]]]) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        header, *body = list(csv.reader(handle))
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *change(header, body)])


def compare(tmp_path: Path, name: str, folder: Path, reference: str, fast: str) -> None:
    """Sync an export, a later one, and that again, through both paths; compare the stores."""
    later = change(folder, tmp_path / f"{name}-later")
    for export in (folder, later, later):
        sync(OneByOne, export, reference)
        sync(CsvConnector, export, fast)
    got, expected = dump(fast), dump(reference)
    assert got.keys() == expected.keys()
    for table in expected:
        assert got[table] == expected[table], (name, table)
    assert len(expected["interactions"]) > 2000


def test_a_sync_stores_what_the_reference_stores(tmp_path: Path) -> None:
    for name, folder in exports(tmp_path):
        compare(tmp_path, name, folder, f"sqlite:///{tmp_path / f'{name}-reference.db'}",
                f"sqlite:///{tmp_path / f'{name}-fast.db'}")


def test_the_same_on_postgresql(tmp_path: Path, postgres_server: Server) -> None:
    for name, folder in exports(tmp_path):
        if name == "multiparty":
            continue
        with postgres_server.database() as reference, postgres_server.database() as fast:
            compare(tmp_path, name, folder, reference, fast)


# -- any file: the same records and the same errors ---------------------------------------

ACCOUNTS = "id,name,tier,parent_id\nA1,Acme,S,A3\nA2,Globex,B,\nA3,Initech,C,A1\n"
USERS = "id,name,title\nU1,Una,VP Sales\nU2,Ulf,\n"


def cells(good: tuple[str, ...], bad: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Mostly values the format accepts (so that whole batches are valid), sometimes one
    it refuses, sometimes any text."""
    text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
    return st.integers(0, 39).flatmap(
        lambda n: st.sampled_from(good) if n < 38 else st.sampled_from(bad) if n == 38 and bad else text)


CONTACT = st.fixed_dictionaries({
    "id": cells(("C1", "C2", "C3", " C4 ", "C1"), ("",)),
    "account_id": cells(("A1", "A2"), ("A9", "")),
    "name": cells(("Ann", " Bo ", ""), ()),
    "title": cells(("CTO", "采购部经理", "", "Head of IT"), ()),
    "department": cells(("IT", "finance", "网络运维部", "", "unknown"), ()),
    "seniority": cells(("vp", "Manager", "weird", ""), ()),
    "buying_role": cells(("economic_buyer", "Decision-Maker", "champion", ""), ()),
    "stance": cells(("supporter", "2", "", "coach"), ("7", "meh")),
    "reports_to_id": cells(("C1", "C3", ""), ("C9",)),
    "active": cells(("true", "no", ""), ("maybe",)),
    "note": cells(("x", ""), ()),
})
INTERACTION = st.fixed_dictionaries({
    "id": cells(("I1", "I2", "I3", " I4"), ("", " ")),
    "account_id": cells(("A1", "A2", ""), ("A9",)),
    "occurred_at": cells(("2026-01-05T09:30:00Z", "2026-01-05", "2026-01-05T09:30:00+0100", "2026-01-05T09:30:00z",
                          "2026-01-05T09:30:00.5Z", " 2026-01-05T09:30:00Z", "2026-01-05T09:30:00+00:00"),
                         ("2026-13-45", "", "2026-01-05T25:00:00Z", "2026-01-05T09:30:0xZ")),
    "kind": cells(("call", "Meeting", "电话", "EMAIL"), ("bogus", "")),
    "direction": cells(("in", "outbound", "", "Two-Way", "unknown"), ("sideways",)),
    "method": cells(("", "trade show", "none"), ("dance",)),
    "subject": cells(("Re: hello", " padded ", ""), ()),
    "user_ids": cells(("U1", "U1;U2", " U2 ; ;U1", ""), ("U9",)),
    "contact_ids": cells(("", "", ";", "C1"), ("C9",)),
    "duration": cells(("30", "12.5", "1,000", ""), ("abc", "nan")),
    "recipient_count": cells(("3", "", "4.0"), ("2.5", "x")),
    "modified_at": cells(("", "2026-02-01T00:00:00Z"), ("yesterday",)),
    "source": cells(("", "elsewhere"), ()),
})


def table(header: list[str], rows: list[dict[str, str]], ragged: int | None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for index, row in enumerate(rows):
        values = [row[name] for name in header]
        writer.writerow(values + ["spare"] if index == ragged else values)
    return buffer.getvalue().encode("utf-8")


def outcome(stream: CsvStream, fast: bool) -> list[Any]:
    """What a stream gives, comparable: records as dicts, errors as their messages."""
    got: list[Any] = []
    items = stream.batches(None) if fast else stream.records(None)
    try:
        for item in items:
            for one in item.records() if isinstance(item, RowBatch) else [item]:
                if isinstance(one, Record):
                    got.append(("record", one.to_dict()))
                else:
                    assert isinstance(one, InvalidRecord)
                    got.append(("invalid", str(one), one.location))
    except InvalidRecord as exc:
        got.append(("raised", str(exc), exc.location))
    return got


def read(folder: Path, fast: bool, batch: int, fork: bool = False) -> dict[str, list[Any]]:
    """Each stream's outcome; ``fork``: the fast path read in a process of its own, as
    a sync reads it (else here)."""
    out = {}
    for stream in CsvConnector({"path": str(folder)}).streams():
        assert isinstance(stream, CsvStream)
        stream.batch_rows = batch
        stream.fork = stream.fork and fork
        out[stream.name] = outcome(stream, fast)
    return out


FILES = {"contacts": st.lists(CONTACT, max_size=8), "interactions": st.lists(INTERACTION, max_size=12),
         "ragged": st.one_of(st.none(), st.integers(0, 11)), "batch": st.integers(1, 5)}


@contextmanager
def folder_of(contacts: list[dict[str, str]], interactions: list[dict[str, str]],
              ragged: int | None) -> Iterator[Path]:
    """An export of the two generated files beside the fixed accounts and users."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
        (folder / "users.csv").write_text(USERS, encoding="utf-8")
        (folder / "contacts.csv").write_bytes(table(list(CONTACT_COLUMNS), contacts, None))
        (folder / "interactions.csv").write_bytes(table(list(INTERACTION_COLUMNS), interactions, ragged))
        yield folder


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**FILES)
def test_any_file_gives_the_same_records_and_errors(contacts: list[dict[str, str]],
                                                    interactions: list[dict[str, str]],
                                                    ragged: int | None, batch: int) -> None:
    with folder_of(contacts, interactions, ragged) as folder:
        expected = read(folder, False, batch)
        assert read(folder, True, batch) == expected
        # the coercers of whole columns, which take over once a column proves mostly distinct
        with patch.object(columns, "CACHE", 0):
            assert read(folder, True, batch) == expected


# Fewer examples: each forks a reader per file, and a fork costs what the test process
# holds (from a pytest worker late in the suite, 90% of the previous test's minute).
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**FILES)
def test_a_file_read_in_its_own_process_gives_what_it_gives_here(contacts: list[dict[str, str]],
                                                                 interactions: list[dict[str, str]],
                                                                 ragged: int | None, batch: int) -> None:
    """What a sync reads (the fast path in a forked process, its batches in the store's
    form, its errors located there) is what the fast path gives here."""
    with folder_of(contacts, interactions, ragged) as folder:
        with patch.object(reader.os, "fork", wraps=os.fork) as forks:
            forked = read(folder, True, batch, fork=True)
        assert forks.call_count, "the reader was not forked"
        assert forked == read(folder, True, batch)


CONTACT_COLUMNS = ("id", "account_id", "name", "title", "department", "seniority", "buying_role", "stance",
                   "reports_to_id", "active", "note")
INTERACTION_COLUMNS = ("id", "account_id", "occurred_at", "kind", "direction", "method", "subject", "user_ids",
                       "contact_ids", "duration", "recipient_count", "modified_at", "source")


# -- the coercers of whole columns against the record's, cell by cell ----------------------

ID_LISTS = st.lists(st.one_of(
    st.sampled_from(["", "U1", "U1;U2", "CON-000023;CON-000010", ";", "U1;", ";U1", "U1;;U2", " U1", "U1 ; U2",
                     "U1;\u00a0U2", "U1\u2028", "U1;U2\t", "\x1fU1", "U\x1f1"]),
    st.text(st.sampled_from("U1; \t\u00a0\u2028\x1f\x85\n"), max_size=8)), max_size=20)
TIMES = st.lists(st.one_of(
    st.sampled_from(["2024-11-27T00:42:58Z", "2024-11-27T00:42:58+00:00", "2024-11-27T00:42:58-00:00",
                     "2024-11-27T00:42:58.25Z", "2024-11-27T00:42:58z", "2024-11-27T00:42:58+0000",
                     "2024-11-27T01:42:58+01:00", "2024-11-27T00:42:58", "2024-11-27", " 2024-11-27T00:42:58Z",
                     "2024-11-27T00:42Z", "20241127T004258Z", "2024-11-27T00:42:58Z ", "", "2024-13-27T00:00:00Z"]),
    st.text(st.sampled_from("2024-11T0:5Z+ z."), max_size=22)), min_size=1, max_size=20)


def coerced(coerce: Callable[[Any], Any], cells: list[str]) -> list[Any] | str:
    """``coerce`` over ``cells``, or the kind of error it raised."""
    try:
        return coerce(cells)
    except (ValueError, TypeError) as exc:
        return type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(ID_LISTS)
def test_a_column_of_id_lists_is_what_each_cell_gives(cells: list[str]) -> None:
    one = Interaction.coercer("contact_ids")
    assert columns._split(cells) == [one(cell) for cell in cells]


@settings(max_examples=300, deadline=None)
@given(TIMES)
def test_a_column_of_times_is_what_each_cell_gives(cells: list[str]) -> None:
    for name in ("occurred_at", "modified_at"):  # required and optional
        one = Interaction.coercer(name)
        got = coerced(columns._timer(one), cells)
        assert got == coerced(lambda cells, one=one: [one(cell) for cell in cells], cells)
        if isinstance(got, list):
            assert all(value is None or value.tzinfo is not None and value.utcoffset().total_seconds() == 0
                       for value in got)
