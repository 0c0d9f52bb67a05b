"""Mailboxes and a small CRM export made by the tests: threads, replies, forwards, a
mailing list, internal mail, odd encodings and malformed messages."""

from __future__ import annotations

import mailbox
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=timezone.utc)

ACCOUNTS = """id,name,domain,tier
A1,Pinnacle Bank,pinnaclebank.example,S
A2,Harbor Telecom,harbor.example,A
A3,Quiet Mining,quietmining.example,B
"""
USERS = """id,name,email,title,team_role
U1,Alice Chen,alice@vendor.example,Account Director,AR
U2,Ben Ortiz,ben@vendor.example,Solution Manager,SR
"""
CONTACTS = """id,account_id,name,email,title
C1,A1,Lena Ng,lena@pinnaclebank.example,Chief Information Officer
C2,A1,Raj Patel,raj@pinnaclebank.example,Head of Procurement
C3,A2,Omar Khan,omar@harbor.example,VP Network Engineering
C4,A3,Ines Ruiz,ines@quietmining.example,Operations Manager
"""


def crm_export(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
    (folder / "users.csv").write_text(USERS, encoding="utf-8")
    (folder / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    return folder


def message(mid: str | None, sender: str, to: str, *, days: float = 0, cc: str | None = None,
            subject: str = "Pricing", reply_to: str | None = None, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(T0 + timedelta(days=days))
    if mid:
        msg["Message-ID"] = mid
    if reply_to:
        msg["In-Reply-To"] = reply_to
        msg["References"] = reply_to
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("The body is never read.\n")
    return msg


def inbox_messages() -> list[EmailMessage]:
    """The customer side of the thread and other mail our users received."""
    return [
        message("<t2@pinnaclebank.example>", "Lena Ng <lena@pinnaclebank.example>", "alice@vendor.example",
                days=1, reply_to="<t1@vendor.example>", subject="Re: Pricing"),
        message("<n1@news.example>", "Pinnacle News <news@pinnaclebank.example>", "alice@vendor.example",
                days=2, List_Id="<weekly.pinnaclebank.example>"),
        # an unknown person at Pinnacle writes; RFC 2047 encoded name
        message("<u1@pinnaclebank.example>", "=?utf-8?q?J=C3=BCrgen_Gro=C3=9F?= <juergen@pinnaclebank.example>",
                "alice@vendor.example", days=3, subject="=?utf-8?b?R3LDvMOfZQ==?="),
        message("<s1@gmail.example>", "stranger@gmail.com", "alice@vendor.example", days=3),
    ]


def sent_messages() -> list[EmailMessage]:
    """What our users sent: the thread's first and last message, a forward, internal mail."""
    return [
        message("<t1@vendor.example>", "Alice Chen <alice@vendor.example>", "lena@pinnaclebank.example",
                cc="ben@vendor.example"),
        message("<t3@vendor.example>", "alice@vendor.example", "lena@pinnaclebank.example", days=1.5,
                reply_to="<t2@pinnaclebank.example>", subject="Re: Pricing"),
        message("<f1@vendor.example>", "ben@vendor.example", "omar@harbor.example", days=4,
                subject="Fwd: Pricing"),
        message("<i1@vendor.example>", "ben@vendor.example", "alice@vendor.example", days=4,
                subject="internal"),
        # to many customers: Harbor and Pinnacle in one message
        message("<m1@vendor.example>", "ben@vendor.example", "omar@harbor.example, raj@pinnaclebank.example",
                days=5),
    ]


def write_mbox(path: Path, messages: list[EmailMessage]) -> Path:
    box = mailbox.mbox(path)
    for msg in messages:
        box.add(msg)
    box.flush()
    box.close()
    return path


def write_maildir(path: Path, inbox: list[EmailMessage], sent: list[EmailMessage]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(path)
    for msg in inbox:
        box.add(msg)
    folder = box.add_folder("Sent")
    for msg in sent:
        folder.add(msg)
    return path


def raw(headers: bytes) -> bytes:
    return headers + b"\r\n\r\nbody\r\n"


def malformed_mbox(path: Path) -> Path:
    """Two good messages around three bad ones (bad Date, Latin-1 header bytes, a broken
    header block), and one with UTF-8 headers (valid, RFC 6532)."""
    good1 = raw(b"From: Lena Ng <lena@pinnaclebank.example>\r\nTo: alice@vendor.example\r\n"
                b"Date: Tue, 1 Sep 2026 09:00:00 +0000\r\nMessage-ID: <g1@pinnaclebank.example>")
    bad_date = raw(b"From: lena@pinnaclebank.example\r\nTo: alice@vendor.example\r\n"
                   b"Date: someday soon\r\nMessage-ID: <bad-date@pinnaclebank.example>")
    latin1 = raw(b"From: J\xfcrgen <juergen@pinnaclebank.example>\r\nTo: alice@vendor.example\r\n"
                 b"Date: Tue, 1 Sep 2026 10:00:00 +0000\r\nMessage-ID: <latin1@pinnaclebank.example>")
    broken = raw(b"From: omar@harbor.example\r\nthis line is not a header\r\nTo: ben@vendor.example\r\n"
                 b"Date: Tue, 1 Sep 2026 11:00:00 +0000\r\nMessage-ID: <broken@harbor.example>")
    utf8 = raw("From: Jürgen Groß <juergen@pinnaclebank.example>\r\nTo: alice@vendor.example\r\n"
               "Subject: Grüße aus Zürich\r\nDate: Tue, 1 Sep 2026 12:00:00 +0000\r\n"
               "Message-ID: <utf8@pinnaclebank.example>".encode())
    with open(path, "wb") as handle:
        for data in (good1, bad_date, latin1, broken, utf8):
            handle.write(b"From MAILER-DAEMON Tue Sep  1 09:00:00 2026\n" + data.replace(b"\r\n", b"\n") + b"\n")
    return path
