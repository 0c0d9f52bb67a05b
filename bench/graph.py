"""The Microsoft Graph sync against the Graph emulator: messages per second and the sync's
peak memory at two sizes (a tenth of the messages, and all of them), whose ratio says
whether memory stays flat as the mailbox grows.

The emulator runs in the harness's own process (its data is not the sync's memory); the
CSV CRM the mail is linked to is imported first, in a phase of its own; the sync runs in a
child process like every phase (``python -m bench.child graph``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from crmlink.testing.graph_emulator import GraphEmulator
from crmlink.testing.graph_emulator.seed import CUSTOMERS, OUR_DOMAIN, seed

MAILBOXES = 3
Child = Callable[..., dict[str, Any]]


def crm_folder(out: Path) -> Path:
    """Our users (the seeded mailboxes) and three contacts at each customer domain."""
    folder = out / "graph-crm"
    folder.mkdir(parents=True, exist_ok=True)
    names = ("ann", "bob", "carl")
    (folder / "accounts.csv").write_text("id,name,domain\n" + "".join(
        f"A{i},{domain},{domain}\n" for i, domain in enumerate(CUSTOMERS, 1)))
    (folder / "users.csv").write_text("id,name,email\n" + "".join(
        f"U{i},{name},{name}@{OUR_DOMAIN}\n" for i, name in enumerate(names[:MAILBOXES], 1)))
    (folder / "contacts.csv").write_text("id,account_id,name,email\n" + "".join(
        f"C{a}{i},A{a},{name},{name}@{domain}\n" for a, domain in enumerate(CUSTOMERS, 1)
        for i, name in enumerate(names, 1)))
    return folder


def run(messages: int, out: Path, child: Child, fresh_db: Callable[[Path], str]) -> list[dict[str, Any]]:
    """Both sizes' figures (``messages // 10`` first, at least 10 messages)."""
    folder = crm_folder(out)
    figures = []
    for count in (max(10, messages // 10), messages):
        with GraphEmulator() as emu:
            seed(emu, count, mailboxes=MAILBOXES,
                 start=datetime.now(timezone.utc) - timedelta(days=200))
            db = fresh_db(out / f"graph-{count}.db")
            child("import", "--folder", str(folder), "--db", db)
            emu.reset_log()
            synced = child("graph", "--db", db, "--url", emu.url, "--ca", emu.ca_path or "",
                           "--tenant", emu.tenant_id, "--mailboxes",
                           ",".join(b.address for b in emu.directory.mailboxes.values()))
            requests = [r for r in emu.requests if r.path.startswith("/v1.0/")]
            read = sum(len(emu.messages(b)) for b in emu.directory.mailboxes.values())
        figures.append({**synced, "messages": read, "requests": len(requests),
                        "rate": round(read / synced["seconds"]),
                        "errors": int(synced.get("exit", 0) != 0)})
    return figures


def sync(db: str, url: str, ca: str, tenant: str, mailboxes: str) -> dict[str, Any]:
    """The child side: ``crmlink sync graph`` over every mailbox, then what it stored."""
    import os

    from crmlink.cli import cli
    from crmlink.core.store import Store
    from crmlink.testing.graph_emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

    os.environ["REQUESTS_CA_BUNDLE"] = ca
    argv = ["sync", "graph", "--tenant-id", tenant, "--client-id", DEFAULT_CLIENT_ID,
            "--client-secret", DEFAULT_CLIENT_SECRET, "--base-url", f"{url}/v1.0",
            "--authority-url", url, "--db", db, "-q"]
    for mailbox in mailboxes.split(","):
        argv += ["--mailbox", mailbox]
    try:
        code = cli.main(argv, standalone_mode=False) or 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    store = Store(db)
    return {"exit": code, "interactions": store.count("interaction", source="graph")}
