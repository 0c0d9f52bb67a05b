"""The IMAP read rate: the generated mbox of the mail phase (bench/mail.py), put in a real
IMAP server (pymap, in memory, on 127.0.0.1: crmlink.testing.imap_server) split over
INBOX and a \\Sent folder, then synced with ``crmlink sync imap`` into a store that holds
the sample CRM. The server runs in the harness's process (its mail is not the sync's
memory); the sync runs in a child process like every phase. Small sizes only: loading
the server (one APPEND per message) costs more than the sync."""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.mail import SAMPLE, write_mbox

USER, PASSWORD = "bench@vendor.example", "bench-imap-password"
Child = Callable[..., dict[str, Any]]


def run(messages: int, out: Path, child: Child, fresh_db: Callable[[Path], str]) -> dict[str, Any] | None:
    """The sync's figures, or ``None`` when pymap is not installed (Python 3.10)."""
    try:
        from crmlink.testing.imap_server import ImapServer
    except ImportError:
        return None
    mbox = write_mbox(out / f"imap-{messages}.mbox", messages)
    with ImapServer(users={USER: PASSWORD}, special_use={"Sent": "\\Sent"}) as server:
        server.create(USER, "Sent")
        box = mailbox.mbox(out / f"imap-{messages}.mbox", create=False)
        with server.client(USER) as client:
            for n, key in enumerate(box.iterkeys()):
                client.append("Sent" if n % 2 else "INBOX", box.get_bytes(key))
        box.close()
        db = fresh_db(out / "imap.db")
        child("import", "--folder", str(SAMPLE), "--db", db)
        synced = child("imap", "--db", db, "--url", f"{server.host}:{server.port}",
                       "--ca", server.ca_path or "")
    (out / f"imap-{messages}.mbox").unlink()
    return {**synced, "messages": messages, "mib": mbox["mib"],
            "rate": round(messages / synced["seconds"]), "errors": int(synced.get("exit", 0) != 0)}


def sync(db: str, address: str, ca: str) -> dict[str, Any]:
    """The child side: ``crmlink sync imap`` of both folders, then what it stored."""
    from crmlink.cli import cli
    from crmlink.core.store import Store

    host, port = address.rsplit(":", 1)
    argv = ["sync", "imap", "--host", host, "--port", port, "--username", USER,
            "--password", PASSWORD, "--ca-file", ca, "--internal-domain", "vendor.example",
            "--db", db, "-q"]
    try:
        code = cli.main(argv, standalone_mode=False) or 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return {"exit": code, "interactions": Store(db).count("interaction", source="imap")}
