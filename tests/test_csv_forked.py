"""Files read in a forked process (``crmlink.plugins.csv.reader``) against the same
files read in the importing process: the same records, the same errors in the same
places, lines located alike, and rows in the store's form that read back as the records."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmlink import InvalidRecord, Record, RowBatch
from crmlink.core.rows import StoredRows
from crmlink.plugins.csv import FILES, CsvStream, reader
from crmlink.plugins.csv.ids import IdSet

SPECS = {spec.name: spec for spec in FILES}
HEADER = "id,account_id,occurred_at,kind,direction,subject,user_ids,contact_ids,duration\n"
GOOD = "I{n},A1,2026-01-05T09:30:00Z,call,outbound,Hello {n},U1;U2,C1,30\n"


def stream(folder: Path, text: bytes | str, fork: bool, batch: int = 3) -> CsvStream:
    path = folder / "interactions.csv"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    known: dict[str, IdSet] = {"accounts": IdSet(), "users": IdSet(), "contacts": IdSet()}
    known["accounts"].update(["A1"])
    known["users"].update(["U1", "U2"])
    known["contacts"].update(["C1"])
    one = CsvStream(path, SPECS["interactions"], known)
    one.batch_rows, one.fork = batch, fork
    return one


def outcome(items: Iterator[Any]) -> list[Any]:
    got: list[Any] = []
    try:
        for item in items:
            if isinstance(item, RowBatch):
                got.extend(("record", record.to_dict()) for record in item.records())
            elif isinstance(item, Record):
                got.append(("record", item.to_dict()))
            else:
                assert isinstance(item, InvalidRecord)
                got.append(("invalid", str(item), item.location, item.remote_id, item.field))
    except InvalidRecord as exc:
        got.append(("raised", str(exc), exc.location))
    return got


def both(tmp_path: Path, text: bytes | str, batch: int = 3) -> list[Any]:
    forked = outcome(stream(tmp_path, text, True, batch).batches(None))
    here = outcome(stream(tmp_path, text, False, batch).batches(None))
    assert forked == here
    assert forked == outcome(stream(tmp_path, text, False, batch).records(None))
    return forked


def rows(*numbers: int) -> str:
    return "".join(GOOD.format(n=n) for n in numbers)


def test_good_rows_come_in_the_stores_form_and_read_back_as_the_records(tmp_path: Path) -> None:
    items = list(stream(tmp_path, HEADER + rows(*range(1, 8)), True).batches(None))
    assert all(isinstance(item, RowBatch) and isinstance(item.rows, StoredRows) for item in items)
    assert len(both(tmp_path, HEADER + rows(*range(1, 8)))) == 7


@pytest.mark.parametrize("bad", [
    "I4,A9,2026-01-05T09:30:00Z,call,outbound,x,U1,C1,30\n",      # a missing account
    "I4,A1,2026-13-45,call,outbound,x,U1,C1,30\n",                 # a bad time
    "I4,A1,2026-01-05T09:30:00Z,call,outbound,x,U1,C1\n",          # a short row
    ",A1,2026-01-05T09:30:00Z,call,outbound,x,U1,C1,30\n",         # no id
])
def test_a_bad_row_is_yielded_where_it_is_with_its_location(tmp_path: Path, bad: str) -> None:
    got = both(tmp_path, HEADER + rows(1, 2, 3) + bad + rows(5, 6))
    assert [kind for kind, *_ in got] == ["record"] * 3 + ["invalid"] + ["record"] * 2
    assert got[3][2].endswith("interactions.csv:5:" + got[3][2].rsplit(":", 1)[1])


@pytest.mark.parametrize("bad", [b"I4,A1,\xff\xfe,call\n", b"I4,A1,\x00,call\n", b'I4,"A1"x,2026,call\n'])
def test_an_unreadable_line_is_raised_after_the_rows_before_it(tmp_path: Path, bad: bytes) -> None:
    text = (HEADER + rows(1, 2, 3)).encode() + bad + rows(5, 6).encode()
    got = both(tmp_path, text, batch=2)
    assert [kind for kind, *_ in got] == ["record"] * 3 + ["raised"]
    assert ":5:" in got[-1][2]


def test_a_bad_value_before_a_bad_byte_in_one_block_is_reported_first(tmp_path: Path) -> None:
    bad = "I3,A1,2026-13-45,call,outbound,x,U1,C1,30\n"
    text = (HEADER + rows(1, 2) + bad).encode() + b"I4,A1,\xff,call\n"
    got = both(tmp_path, text, batch=10)
    assert [kind for kind, *_ in got] == ["record", "record", "invalid", "raised"]


@pytest.mark.parametrize("odd", ['I3,A1,2026-01-05T09:30:00Z,call,outbound,"two\rlines",U1,C1,30\n',
                                 'I3,A1,2026-01-05T09:30:00Z,call,outbound,"a\u2028b\x0cc",U1,C1,30\n',
                                 'I3,A1,2026-01-05T09:30:00Z,call,outbound,"two\nlines",U1,C1,30\n',
                                 'I3,A1,2026-01-05T09:30:00Z,call,outbound,x,U1,C1,30\r\n'])
def test_line_breaks_inside_fields_and_lines_split_as_the_file_does(tmp_path: Path, odd: str) -> None:
    got = both(tmp_path, HEADER + rows(1, 2) + odd + "I9,A9,2026-01-05T09:30:00Z,call,in,x,U1,C1,1\n")
    assert [kind for kind, *_ in got] == ["record"] * 3 + ["invalid"]


def test_a_repeated_id_is_located_from_the_lines_the_reader_sent(tmp_path: Path) -> None:
    one = stream(tmp_path, HEADER + rows(1, 2, 3) + "\n" + rows(4, 2), True, batch=2)
    list(one.batches(None))
    assert one.locate("I2") == f"{one.path}:7:1"  # the latest line of the id
    assert one.locate("I4") == f"{one.path}:6:1"


def test_leaving_early_stops_the_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ended: list[int] = []
    end = reader._end
    monkeypatch.setattr(reader, "_end", lambda pid: (ended.append(pid), end(pid)))
    items = stream(tmp_path, HEADER + rows(*range(1, 5000)), True, batch=10).batches(None)
    assert isinstance(next(items), RowBatch)
    items.close()  # kills and waits for the reader: no process is left behind
    assert len(ended) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(ended[0], os.WNOHANG)


def test_a_file_that_cannot_be_opened_fails_as_in_process(tmp_path: Path) -> None:
    errors = []
    for fork in (True, False):
        one = stream(tmp_path, HEADER, fork)
        one.path = tmp_path / "gone" / "interactions.csv"
        with pytest.raises(OSError) as caught:
            list(one.batches(None))
        errors.append((type(caught.value), str(caught.value), caught.value.errno, caught.value.filename))
    assert errors[0] == errors[1]
