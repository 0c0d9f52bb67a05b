"""The mbox read rate: a generated mbox of N messages between the bundled sample's users
and contacts (threads, replies, a mailing list, internal mail, strangers), synced with
``crmlink sync mail`` into a store that holds the sample CRM."""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample"
START = datetime(2025, 11, 20, tzinfo=timezone.utc)
#: a body of about the size of a short business mail with a signature (never read)
BODY = ("Thanks, see the points below.\n" + "lorem ipsum dolor sit amet " * 60 + "\n").encode()


def _emails(name: str) -> list[str]:
    with open(SAMPLE / f"{name}.csv", encoding="utf-8") as handle:
        return [row["email"] for row in csv.DictReader(handle) if row.get("email")]


def write_mbox(path: Path, messages: int, seed: int = 7) -> dict[str, Any]:
    """Write ``messages`` messages to ``path`` (streamed, seeded); returns the count and size."""
    rng = random.Random(seed)
    users, contacts = _emails("users"), _emails("contacts")
    step = timedelta(days=365) / max(1, messages)
    with open(path, "wb") as out:
        for n in range(messages):
            at = START + step * n
            ours, theirs = rng.choice(users), rng.choice(contacts)
            roll = rng.random()
            sender, to = (theirs, ours) if roll < 0.4 else (ours, theirs)
            extra = ""
            if roll > 0.95:
                extra = "List-Id: <news.vendor.example>\n"
            elif roll > 0.9:
                to = rng.choice(users)  # internal
            elif roll > 0.85:
                sender = f"stranger{n}@gmail.com"
            reply = f"In-Reply-To: <m{n - 1}@bench.example>\nReferences: <m{n - 1}@bench.example>\n" if n and roll < 0.4 else ""
            head = (f"From: {sender}\nTo: {to}\nSubject: Re: offer {n % 97}\nDate: {format_datetime(at)}\n"
                    f"Message-ID: <m{n}@bench.example>\n{reply}{extra}")
            out.write(b"From MAILER-DAEMON " + at.strftime("%a %b %d %H:%M:%S %Y").encode() + b"\n")
            out.write(head.encode() + b"\n" + BODY + b"\n")
    return {"messages": messages, "mib": round(path.stat().st_size / 2**20, 1)}
