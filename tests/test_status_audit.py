"""``crmlink status`` says what the next audit of each source starts from: its aggregates
(built with the config's settings? how many stale?) and the accounts in the audit's cache."""

from __future__ import annotations

from pathlib import Path

from crmlink.core import aggregate_store
from tests.conftest import AS_OF, run, synced


def status(url: str, *extra: str) -> str:
    result = run("status", "--db", url, *extra)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    return "\n".join(lines[lines.index("The next audit:") + 1:])


def test_aggregates_and_cache_as_the_next_audit_finds_them(store_url: str, tmp_path: Path) -> None:
    url = store_url
    store, source = synced(url)
    with store.engine.connect() as conn:
        built = aggregate_store.count(conn, source)
    assert built > 1
    assert status(url) == f"  {source}: {built} aggregate(s), none stale; 0 account(s) in the audit's cache"
    assert run("audit", "--db", url, "--as-of", AS_OF, "--format", "json", "--output", str(tmp_path / "a.json")
               ).exit_code == 0
    assert status(url).endswith(f"; {store.count('account', source=source)} account(s) in the audit's cache")
    with store.transaction() as conn:  # what a killed sync leaves: marks, not aggregates
        first, second = sorted(aggregate_store.with_aggregates(conn, source))[:2]
        aggregate_store.mark(conn, [(source, first), (source, second), (source, aggregate_store.PEOPLE)])
    assert status(url).startswith(f"  {source}: {built} aggregate(s), 2 stale (it reads those accounts' "
                                  "interactions until a sync or crmlink aggregate rebuilds them), its "
                                  "executives to check (people changed since);")
    assert run("aggregate", "--db", url).exit_code == 0
    assert f"{built} aggregate(s), none stale" in status(url)


def test_other_settings_or_none_of_the_features(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    _, source = synced(url)
    other = tmp_path / "other.toml"
    other.write_text("[strength]\nhalf_life_days = 30\n", encoding="utf-8")
    assert status(url, "--config", str(other)).startswith(
        f"  {source}: aggregates built with other settings or plugins: it reads every interaction until a sync")
    off = tmp_path / "off.toml"
    off.write_text("[audit]\naggregates = false\ncache = false\n", encoding="utf-8")
    assert status(url, "--config", str(off)) == (
        f"  {source}: aggregates off ([audit] aggregates = false): it reads every interaction; "
        "the audit's cache off")
