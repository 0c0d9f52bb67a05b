from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, settings

from crmlink.cli import cli
from crmlink.core.store import Store
from crmlink.testing import postgres as pgserver

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample"
AS_OF = "2026-11-20"

# no property test times its examples: the suite runs on shared, noisy machines, and a
# deadline is a timing assertion (a slow example is found by the benchmarks, not here)
settings.register_profile("crmlink", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("crmlink")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads a developer's store, config or plugin settings."""
    monkeypatch.setenv("CRMLINK_DB", f"sqlite:///{tmp_path / 'store.db'}")
    # secrets 'crmlink login' stores go to a file of the test, never a developer's keyring
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "crmlink.core.keystore.PrivateFileKeyring")
    monkeypatch.setenv("CRMLINK_SECRETS_FILE", str(tmp_path / "secrets" / "secrets.json"))
    for name in ("CRMLINK_CONFIG", "CRMLINK_LOAD_PLUGINS", "CRMLINK_DISABLE_PLUGINS",
                 "CRMLINK_STRICT_PLUGINS", "CRMLINK_TRACE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)


def require_postgres() -> Path:
    """The PostgreSQL server binaries' folder, or skip the test with the reason (with
    ``CRMLINK_REQUIRE_POSTGRES=1``, as in CI, fail it instead)."""
    found = pgserver.bindir()
    reason = None
    if found is None:
        reason = ("no PostgreSQL server found (initdb, pg_ctl): install Debian's postgresql package "
                  "or set CRMLINK_PG_BINDIR")
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            reason = "psycopg is not installed: pip install -e '.[postgres]'"
    if reason is not None:
        if os.environ.get("CRMLINK_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CRMLINK_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    assert found is not None
    return found


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pgserver.Server]:
    """A PostgreSQL server for the session (crmlink.testing.postgres), see
    :func:`require_postgres`."""
    server = pgserver.Server(require_postgres())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: pgserver.Server) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL of an empty store, once on SQLite and once on PostgreSQL; also the test's
    ``CRMLINK_DB``, so the CLI and ``Store()`` use it."""
    url = (f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    monkeypatch.setenv("CRMLINK_DB", url)
    return url


@pytest.fixture(scope="session")
def sample_audit(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The JSON audit of the bundled sample, computed once."""
    db = tmp_path_factory.mktemp("sample") / "store.db"
    result = CliRunner().invoke(cli, ["audit", str(SAMPLE), "--db", f"sqlite:///{db}", "--as-of", AS_OF,
                                      "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def synced(url: str) -> tuple[Store, str]:
    """The store at ``url`` with the sample synced into it, and its one source."""
    result = CliRunner().invoke(cli, ["sync", "csv", str(SAMPLE), "--db", url, "-q"])
    assert result.exit_code == 0, result.output
    store = Store(url)
    (source,) = store.sources()
    return store, source


def on_terminal(*args: str, stdout: int | None = subprocess.DEVNULL) -> tuple[int, str]:
    """``crmlink ARGS`` with stderr on a pseudo-terminal (and stdout too, with
    ``stdout=None``): its exit code and what the terminal showed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "crmlink", *args],
                            stdout=follower if stdout is None else stdout, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return proc.wait(timeout=120), shown.decode("utf-8", "replace")
