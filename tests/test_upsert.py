"""The one-statement upsert against a plain model of what it must do, on SQLite and
PostgreSQL: random batches with repeated keys, unchanged, changed and new records,
repeats within a run and writes without a run, across SQLite's statement pieces."""

from __future__ import annotations

import random

import sqlalchemy as sa

from crmlink import Account
from crmlink.core import schema
from crmlink.core.store import Store
from crmlink.core.upsert import _shared

Key = tuple[str, str]


class Model:
    """What ``Store.upsert`` promises, as plain Python."""

    def __init__(self) -> None:
        self.rows: dict[Key, tuple[tuple[object, ...], int | None]] = {}

    def upsert(self, records: list[Account], run: int | None) -> tuple[int, int, list[str], list[str]]:
        batch: dict[Key, tuple[object, ...]] = {}
        duplicates: list[str] = []
        for r in records:
            key = (r.source, r.remote_id)
            if key in batch:
                duplicates.append(r.remote_id)
            else:
                batch[key] = (r.name, r.industry, r.deleted)
        created = updated = 0
        unchanged: list[str] = []
        for key, values in batch.items():
            stored = self.rows.get(key)
            if stored is None:
                created += 1
            elif run is not None and stored[1] == run:
                duplicates.append(key[1])
                continue
            elif stored[0] == values:
                unchanged.append(key[1])
                if run is None:
                    continue
            else:
                updated += 1
            self.rows[key] = (values, run)
        return created, updated, sorted(duplicates), sorted(unchanged)


def test_random_batches_do_what_the_model_says(store_url: str) -> None:
    rng = random.Random(20261206)
    store, model = Store(store_url), Model()
    run = 0
    for _ in range(40):
        if rng.random() < 0.7:
            run += 1
        current = run if rng.random() < 0.85 else None
        for _ in range(rng.choice((1, 2))):  # a run may write several batches
            size = rng.choice((1, 5, 60, 300, 700))
            records = [Account(remote_id=f"A{rng.randrange(400)}", source=rng.choice(("s1", "s1", "s2")),
                               name=rng.choice(("Acme", "Beta", None)), industry=rng.choice(("Energy", None)),
                               deleted=rng.random() < 0.05)
                       for _ in range(size)]
            with store.transaction() as conn:
                got = store.upsert(conn, records, run_id=current)
            expected = model.upsert(records, current)
            assert (got.created, got.updated, sorted(got.duplicates), sorted(got.unchanged)) == expected
    table = schema.TABLES["account"]
    with store.engine.connect() as conn:
        stored = {(s, r): ((n, i, bool(d)), run_id) for s, r, n, i, d, run_id in conn.execute(sa.select(
            table.c.source, table.c.remote_id, table.c.name, table.c.industry, table.c.deleted, table.c.run_id))}
    assert stored == model.rows


def test_a_column_is_bound_once_only_when_every_row_stores_the_same_value() -> None:
    # 1, True and 1.0 are equal in Python but stored as different values; floats are never
    # shared (-0.0 == 0.0); a single row shares nothing (its statement binds every value)
    columns = [("a", "a", "a"), (1, True, 1), (1.0, 1.0, 1.0), (None, None, None), (0, 0, 0),
               ("x", "y", "x"), (True, True, True), (None, "", None)]
    assert _shared(columns) == (0, 3, 4, 6)
    assert _shared([("a",), (None,)]) == ()


def test_a_first_import_into_empty_tables_falls_back_to_the_upsert_at_a_repeated_key(store_url: str) -> None:
    # the first batch is written by plain inserts; the second repeats a key of the first in
    # its third statement piece: the pieces before it stay written, the rest is upserted
    store = Store(store_url)
    first = [Account(remote_id=f"A{i}", source="s1", name="Acme") for i in range(300)]
    second = [Account(remote_id=f"B{i}", source="s1", name="Beta") for i in range(600)]
    second[550] = Account(remote_id="A7", source="s1", name="Other")
    with store.transaction() as conn:
        assert store.upsert(conn, first, run_id=1).created == 300
        got = store.upsert(conn, second, run_id=1)
    assert (got.created, got.updated, got.duplicates) == (599, 0, ["A7"])
    table = schema.TABLES["account"]
    with store.engine.connect() as conn:
        stored = dict(conn.execute(sa.select(table.c.remote_id, table.c.name)).all())
    assert len(stored) == 899 and stored["A7"] == "Acme" and stored["B599"] == "Beta"
