"""Properties of CSV parsing (hypothesis): any well-formed export round-trips through the
CSV connector; any bytes at all in a file give records or the typed InvalidRecord (with a
``file:line:column`` location), never another exception."""

from __future__ import annotations

import csv
import io
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlink import CrmlinkError, InvalidRecord, Record
from crmlink.plugins.csv import CsvConnector

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
cell_text = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff",
                                  whitelist_characters="\n\t"),
                    max_size=30).map(str.strip)
row_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12)
accounts = st.lists(st.tuples(row_ids, cell_text, st.sampled_from(["", "S", "A", "B", "C"]),
                              st.one_of(st.just(""), st.decimals(0, 10**12, places=2).map(str))),
                    min_size=1, max_size=20, unique_by=lambda r: r[0])


def read(folder: Path) -> list[Record | InvalidRecord]:
    out: list[Record | InvalidRecord] = []
    for stream in CsvConnector({"path": str(folder)}).streams():
        out.extend(stream.records(None))
    return out


def export(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@SETTINGS
@given(rows=accounts, bom=st.booleans(), crlf=st.booleans())
def test_well_formed_accounts_round_trip(rows: list[tuple[str, str, str, str]], bom: bool, crlf: bool) -> None:
    data = export(rows, ("id", "name", "tier", "annual_revenue"))
    if not crlf:
        data = data.replace(b"\r\n", b"\n")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "accounts.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
        got = read(Path(tmp))
    assert all(isinstance(r, Record) for r in got), got
    assert [r.remote_id for r in got] == [r[0] for r in rows]
    for record, (_rid, name, tier, revenue) in zip(got, rows, strict=True):
        assert (record.name or "") == name
        assert (record.tier or "") == tier
        assert record.annual_revenue == (Decimal(revenue) if revenue else None)


@SETTINGS
@given(data=st.one_of(st.binary(max_size=400),
                      st.text(max_size=300).map(lambda t: ("id,name,tier\n" + t).encode("utf-8", "surrogatepass")),
                      accounts.map(lambda rows: export(rows, ("id", "name", "tier", "annual_revenue"))).flatmap(
                          lambda good: st.integers(0, max(0, len(good) - 1)).map(
                              lambda cut: good[:cut] + b'"' + good[cut:]))))
def test_any_bytes_give_records_or_a_located_invalid_record(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "accounts.csv").write_bytes(data)
        try:
            got = read(Path(tmp))
        except CrmlinkError as exc:
            assert isinstance(exc, InvalidRecord), exc
            assert exc.location and "accounts.csv:" in exc.location, exc
            return
    for item in got:
        assert isinstance(item, (Record, InvalidRecord)), item
        if isinstance(item, InvalidRecord):
            assert item.location and "accounts.csv:" in item.location
