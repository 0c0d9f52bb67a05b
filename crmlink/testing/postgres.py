"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` in a temporary
folder, a free port on 127.0.0.1, a fresh database per test (:meth:`Server.database`).
crmlink's own test suite starts one per session (tests/conftest.py, ``store_url``).

The server binaries are looked up in ``$CRMLINK_PG_BINDIR``, on ``PATH``, through
``pg_config --bindir`` and in Debian's ``/usr/lib/postgresql/<version>/bin``. PostgreSQL
refuses to run as root: as root the server runs as the ``postgres`` user (else
``nobody``) through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

USER = "crmlink"


def bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    candidates = []
    if os.environ.get("CRMLINK_PG_BINDIR"):
        candidates.append(Path(os.environ["CRMLINK_PG_BINDIR"]))
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).resolve().parent)
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name))
    candidates.extend(reversed(versions))
    return next((c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file()), None)


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _runas() -> list[str]:
    """The command prefix that runs the server as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"]
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


#: Every throwaway server's settings: its data is thrown away, so nothing is made durable.
THROWAWAY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "60"}
#: What the benchmark adds for its large sizes, as docs/scaling.md recommends for a first
#: import of millions of interactions: memory for the index builds at the end of a first
#: import, and fewer checkpoints while it writes.
BENCH = {"maintenance_work_mem": "256MB", "max_wal_size": "4GB"}


class Server:
    """A running server; :meth:`database` makes a fresh database and gives its URL.
    ``settings``: server settings on top of :data:`THROWAWAY`."""

    def __init__(self, bin_path: Path, settings: dict[str, str] | None = None) -> None:
        self.bin = bin_path
        self.settings = {**THROWAWAY, **(settings or {})}
        self.folder = Path(tempfile.mkdtemp(prefix="crmlink-pg-"))
        self.port = _free_port()
        self.prefix = _runas()
        if self.prefix:
            user = pwd.getpwnam(self.prefix[2])
            os.chown(self.folder, user.pw_uid, user.pw_gid)

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self.prefix, *argv], capture_output=True, text=True, check=False,
                              cwd=self.folder, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        data = self.folder / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", USER, "--auth=trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        options = " ".join([f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
                            *(f"-c {name}={value}" for name, value in self.settings.items())])
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                  str(self.folder / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def create(self) -> str:
        """Make a new empty database and return its URL (:meth:`drop` removes it)."""
        name = "t_" + uuid.uuid4().hex[:16]
        with self._admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop the database of ``url``, whoever still uses it."""
        name = url.rsplit("/", 1)[1]
        with self._admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def version(self) -> str:
        with self._admin() as admin:
            row = admin.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database for the block, dropped after it."""
        url = self.create()
        try:
            yield url
        finally:
            self.drop(url)

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres", autocommit=True)
