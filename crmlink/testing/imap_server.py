"""A real IMAP server on this machine, for tests, demos and the benchmark: pymap's
in-memory backend (``pip install pymap``, Python 3.11+) served on 127.0.0.1 in a thread.

What it adds to pymap, through pymap's own extension points (its backend, login and
config classes):

- several users with passwords, and XOAUTH2 bearer tokens (pysasl's mechanism; the
  token is checked against :attr:`ImapServer.tokens`);
- SPECIAL-USE attributes on LIST answers (RFC 6154) for the folders named in
  ``special_use``, and the SPECIAL-USE capability;
- the three ways of connecting: ``ssl`` (TLS from the first byte, as on port 993),
  ``starttls`` and ``plain``, with a certificate from a fresh test CA (``ca_path``);
- faults: the connection dropped, or a ``BYE`` sent, in the middle of a FETCH answer.

Mail is put in over IMAP itself (APPEND), with :meth:`ImapServer.append`::

    with ImapServer(users={"ann@contoso.test": "pw"}) as server:
        server.create("ann@contoso.test", "Sent Items")
        server.append("ann@contoso.test", "INBOX", raw_bytes)
        ...  # connect to server.host, server.port (server.ca_path for TLS)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import tempfile
import threading
from argparse import Namespace
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import Config as DictConfig
from pymap.backend.dict import DictBackend, Identity, Login, Session
from pymap.backend.dict.filter import FilterSet
from pymap.backend.dict.mailbox import MailboxSet
from pymap.exceptions import InvalidAuth
from pymap.imap import IMAPServer
from pymap.user import Passwords, UserMetadata
from pysasl import SASLAuth
from pysasl.creds.external import ExternalCredentials
from pysasl.hashing import BuiltinHash

SECURITY = ("ssl", "starttls", "plain")


@dataclass
class Fault:
    """Once the server has written ``after`` untagged FETCH answers on a connection, it
    cuts the connection (``kind="drop"``), says ``* BYE`` and closes it (``"bye"``), or
    stops answering on it, leaving it open (``"stall"``: the client's timeout ends it).
    ``times`` connections are hit, then the fault is spent."""

    kind: str = "drop"
    after: int = 1
    times: int = 1


class _Config(DictConfig):
    special_use: Mapping[str, str] = {}

    @property
    def tls_auth(self) -> SASLAuth:
        return SASLAuth.named([b"PLAIN", b"LOGIN", b"XOAUTH2"])

    @property
    def login_capability(self) -> list[bytes]:
        return [*super().login_capability, b"SPECIAL-USE"]


class _Session(Session):
    async def list_mailboxes(self, ref_name: str, filter_: str, subscribed: bool = False,
                             selected: Any = None) -> Any:
        found, updates = await super().list_mailboxes(ref_name, filter_, subscribed, selected)
        special = self.config.special_use if isinstance(self.config, _Config) else {}
        return [(name, sep, [*attrs, *([special[name].encode()] if name in special else [])])
                for name, sep, attrs in found], updates


class _Identity(Identity):
    @asynccontextmanager
    async def new_session(self) -> AsyncIterator[Session]:
        await self.get()
        cached = self.config.set_cache.get(self.name)
        if cached is None:
            cached = self.config.set_cache[self.name] = (MailboxSet(), FilterSet())
        yield _Session(self.name, self.config, *cached)


class _Login(Login):
    bearer: Mapping[str, str] = {}  # XOAUTH2 token -> user

    async def authenticate(self, credentials: Any) -> Identity:
        if isinstance(credentials, ExternalCredentials):  # XOAUTH2: user and bearer token
            if self.bearer.get(credentials._token or "") != credentials.authzid:
                raise InvalidAuth()
            return _Identity(credentials.authzid, self, None, frozenset())
        found = await super().authenticate(credentials)
        return _Identity(found.name, self, None, found.roles)

    async def authorize(self, authenticated: Any, authzid: str) -> Identity:
        found = await super().authorize(authenticated, authzid)
        return _Identity(found.name, self, None, found.roles)


class _FaultyWriter:
    """The connection's writer, cutting it when a :class:`Fault` says so."""

    def __init__(self, writer: asyncio.StreamWriter, server: ImapServer) -> None:
        self._writer, self._server, self._fetches = writer, server, 0
        self._tail = b""  # pymap writes an answer in pieces: a word may span two
        self._stalled = False

    def write(self, data: bytes) -> None:
        if self._stalled:
            return
        fault = self._server._armed()
        window = self._tail + bytes(data)
        self._tail = window[-7:]  # shorter than b" FETCH (": nothing is counted twice
        if fault is not None and b" FETCH (" in window:
            self._fetches += window.count(b" FETCH (")
            if self._fetches >= fault.after:
                self._server._spend(fault)
                self._stalled = True  # nothing more goes out on this connection
                if fault.kind == "bye":
                    self._writer.write(b"* BYE [UNAVAILABLE] shutting down for maintenance\r\n")
                    self._writer.close()
                elif fault.kind == "drop":
                    self._writer.write(data[: max(1, len(data) // 2)])
                    transport = self._writer.transport
                    transport.abort()
                return
        self._writer.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


class ImapServer:
    """pymap on 127.0.0.1 (a free port unless ``port`` is given) in a thread.

    ``users``: login name -> password; ``tokens``: XOAUTH2 bearer token -> login name;
    ``special_use``: folder -> attribute (``{"Sent Items": "\\\\Sent"}``, written
    without the backslash too); ``security``: ``ssl``, ``starttls`` or ``plain``."""

    def __init__(self, *, users: Mapping[str, str] | None = None, tokens: Mapping[str, str] | None = None,
                 special_use: Mapping[str, str] | None = None, security: str = "ssl",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if security not in SECURITY:
            raise ValueError(f"security must be one of {', '.join(SECURITY)}")
        self.users = dict(users or {"ann@contoso.test": "imap-Passw0rd"})
        self.tokens = dict(tokens or {})
        self.special_use = {k: v.lstrip("\\") for k, v in (special_use or {}).items()}
        self.security, self.host, self.port = security, host, port
        self.ca_path: str | None = None
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._login: _Login | None = None
        self._tmpdir: str | None = None

    # --- life cycle ---------------------------------------------------------------------
    def start(self) -> ImapServer:
        self._tmpdir = tempfile.mkdtemp(prefix="crmlink-imap-")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="imap-server", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> ImapServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, ready: threading.Event) -> None:
        args = Namespace(host=self.host, port=self.port, debug=False, cert=None, key=None,
                         tls=self.security == "starttls", proxy_protocol=None, passlib_cfg=None,
                         inherited_sockets=None, demo_data=False, demo_user="-", demo_password="-")
        context = self._tls_context()
        # a test server: passwords hashed with few rounds (pysasl's default of 500,000 makes
        # every login cost half a second of CPU)
        config = _Config.from_args(args, invalid_user_sleep=0.0, ssl_context=context,
                                   reject_dnsbl=False, hash_context=BuiltinHash(rounds=1_000))
        config.special_use = self.special_use
        config.apply_context()
        login = self._login = _Login(config)
        login.bearer = self.tokens
        backend = DictBackend(login, config)
        for name, password in self.users.items():
            hashed = await Passwords(config).hash_password(password)
            await _Identity(name, login, None, frozenset()).set(UserMetadata(config, name, password=hashed))
        imap = IMAPServer(backend.login, config)

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: Any) -> None:
            await imap(reader, _FaultyWriter(writer, self), info)  # type: ignore[arg-type]

        callback = ProxyProtocolReader(config.proxy_protocol).get_callback(connection)
        self._stop = asyncio.Event()
        async with AsyncExitStack() as stack:
            server = await asyncio.start_server(callback, self.host, self.port,
                                                ssl=context if self.security == "ssl" else None)
            await stack.enter_async_context(server)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await self._stop.wait()

    def _tls_context(self) -> ssl.SSLContext:
        import trustme

        assert self._tmpdir is not None
        ca = trustme.CA(organization_name="crmlink IMAP test CA")
        self.ca_path = os.path.join(self._tmpdir, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context

    # --- faults -------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def _armed(self) -> Fault | None:
        with self._lock:
            return self.faults[0] if self.faults else None

    def _spend(self, fault: Fault) -> None:
        with self._lock:
            fault.times -= 1
            if fault.times <= 0 and fault in self.faults:
                self.faults.remove(fault)

    # --- mail ---------------------------------------------------------------------------
    def client(self, user: str) -> Any:
        """An IMAPClient logged in as ``user`` (to fill or change the mailbox)."""
        from imapclient import IMAPClient

        context = ssl.create_default_context(cafile=self.ca_path)
        client = IMAPClient(self.host, self.port, ssl=self.security == "ssl", ssl_context=context,
                            timeout=30)
        if self.security == "starttls":
            client.starttls(context)
        client.login(user, self.users[user])
        return client

    def create(self, user: str, *folders: str) -> None:
        with self.client(user) as client:
            for folder in folders:
                client.create_folder(folder)

    def append(self, user: str, folder: str, messages: Iterable[bytes],
               when: datetime | None = None) -> None:
        """Put messages in a folder (APPEND; ``when`` is their INTERNALDATE)."""
        with self.client(user) as client:
            for data in messages:
                client.append(folder, data, msg_time=when)

    def recreate(self, user: str, folder: str) -> None:
        """Delete the folder and make it again with the same messages: the server gives it a
        new UIDVALIDITY and numbers the messages from 1 again (as after a server migration)."""
        with self.client(user) as client:
            client.select_folder(folder)
            found = client.fetch(client.search("ALL"), ["RFC822", "INTERNALDATE"])
            client.close_folder()
            client.delete_folder(folder)
            client.create_folder(folder)
            for uid in sorted(found):
                client.append(folder, found[uid][b"RFC822"], msg_time=found[uid][b"INTERNALDATE"])

    def uidvalidity(self, user: str, folder: str) -> int:
        with self.client(user) as client:
            return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])


__all__ = ["ImapServer", "Fault", "SECURITY"]
