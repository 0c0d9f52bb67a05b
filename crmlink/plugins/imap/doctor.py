"""``crmlink doctor`` for IMAP: connect and log in, find the folders a sync would read, and
select each (read-only) to count its messages. Nothing is fetched."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from crmlink import Check, CrmlinkError

from .client import ImapSession, UnknownFolder, unique

Classify = Callable[[BaseException], CrmlinkError | None]


def diagnose(session: ImapSession, folders: list[str] | None, classify: Classify) -> Iterator[Check]:
    try:
        session.connect()
    except Exception as exc:
        session.close()
        yield Check("connect", "fail", str(classify(exc) or exc))
        return
    try:
        how = {"ssl": "over TLS", "starttls": "over STARTTLS", "plain": "WITHOUT encryption"}[session.security]
        yield Check("connect", "ok" if session.security != "plain" else "warn",
                    f"logged in to {session.where} as {session.username} {how}",
                    None if session.security != "plain" else "use --ssl or --starttls outside a trusted network")
        yield from _folders(session, folders, classify)
    except Exception as exc:
        yield Check("read", "fail", str(classify(exc) or exc))
    finally:
        session.close()
    yield Check("API budget", "ok", "IMAP has no request budget; a server may cap the bytes "
                "downloaded a day (Gmail: 2,500 MB), and a sync fetches header fields only")


def _folders(session: ImapSession, folders: list[str] | None, classify: Classify) -> Iterator[Check]:
    sent = None
    if folders is None:
        sent = session.sent_folder()
        if sent is None:
            yield Check("folders", "warn", "no folder is marked \\Sent and none has a usual Sent name",
                        "name the Sent folder with --folder (and --folder INBOX)")
    found: list[str] = []
    for name in unique(folders or ["INBOX", sent or ""]):
        try:
            folder = session.select(name)
        except UnknownFolder:
            listed = ", ".join(n for _, n in session.folders()[:20])
            yield Check("read", "fail", f"no folder {name!r}; the server has: {listed}",
                        "check --folder")
            continue
        found.append(f"{name} ({folder.exists:,} messages)")
    if found:
        yield Check("read", "ok", "; ".join(found))
