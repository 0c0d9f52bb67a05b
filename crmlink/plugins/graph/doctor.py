"""``crmlink doctor`` for Microsoft Graph: the app's sign-in, then per mailbox one small
request to its Inbox and one to its calendar (a 403 says which permission the app
registration lacks), and Outlook's request limit (there is no daily budget to read)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from crmlink import AuthError, Check, CrmlinkError, FatalError, RetriableError

from .client import PERMISSIONS, GraphClient, classify_error

GRANT = (f"give the app registration the application permissions {PERMISSIONS} and grant "
         "admin consent (Entra admin center > App registrations > API permissions), and check "
         "that no Exchange access policy leaves the mailbox out")


def diagnose(client: GraphClient, mailboxes: Sequence[str]) -> Iterator[Check]:
    try:
        client.token()
    except Exception as exc:
        yield Check("connect", "fail", str(classify_error(exc) or exc))
        return
    yield Check("connect", "ok", f"signed in to tenant {client.tenant_id} as app {client.client_id} "
                f"at {client.authority_url}")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    window = (f"startDateTime={(now - timedelta(days=1)).isoformat().replace('+00:00', 'Z')}"
              f"&endDateTime={now.isoformat().replace('+00:00', 'Z')}")
    readable = 0
    for mailbox in mailboxes:
        user = quote(mailbox, safe="@")
        probes = (("mail", f"/users/{user}/mailFolders/inbox/messages?$top=1&$select=id"),
                  ("calendar", f"/users/{user}/calendarView?{window}&$top=1&$select=id"))
        for what, path in probes:
            try:
                client.get(path)
            except Exception as exc:
                error = classify_error(exc) or CrmlinkError(f"{type(exc).__name__}: {exc}")
                yield _refused(mailbox, what, error)
                continue
            readable += 1
    total = 2 * len(mailboxes)
    if readable:
        yield Check("read", "ok", f"{readable} of {total}: the Inbox and calendar of "
                    f"{len(mailboxes)} mailbox{'es' if len(mailboxes) != 1 else ''}")
    yield Check("API budget", "ok", "Microsoft Graph has no daily limit; Outlook allows 10,000 "
                "requests per app and mailbox in 10 minutes and answers 429 past it (retried)")


def _refused(mailbox: str, what: str, error: CrmlinkError) -> Check:
    if isinstance(error, FatalError) and "ErrorInvalidUser" in str(error):
        return Check("read", "fail", f"{mailbox}: no such mailbox in the tenant",
                     "check --mailbox: a user or shared mailbox's primary address")
    if isinstance(error, FatalError) and "refused access" in str(error):
        return Check("read", "fail", f"{mailbox} {what}: {error}", GRANT)
    if isinstance(error, (AuthError, RetriableError)):
        return Check("read", "warn" if isinstance(error, RetriableError) else "fail",
                     f"{mailbox} {what}: {error}")
    return Check("read", "fail", f"{mailbox} {what}: {error}")


__all__ = ["diagnose"]
