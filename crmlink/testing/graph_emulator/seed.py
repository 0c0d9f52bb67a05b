"""Generated mailboxes, mail and meetings for trying the emulator by hand and for benchmarks.

Our side is ``contoso.test``; customers are at ``fabrikam.test``, ``northwind.test`` and
``adatum.test``. Threads have replies from the customer, some mail is internal only, some
comes from a mailing list (``List-Id``), and each mailbox has a weekly recurring meeting
and single meetings with accepted, declined and unanswered invitations.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from .emulator import GraphEmulator

OUR_DOMAIN = "contoso.test"
CUSTOMERS = ("fabrikam.test", "northwind.test", "adatum.test")
_FIRST = ("ann", "bob", "carl", "dana", "eve", "finn", "gia", "hugo", "ivy", "jon")


def seed(emu: GraphEmulator, messages: int, *, mailboxes: int = 3, seed: int = 42,
         start: datetime | None = None) -> dict[str, int]:
    """About ``messages`` messages over ``mailboxes`` users; returns counts by kind."""
    rng = random.Random(seed)
    begin = start or datetime(2024, 1, 8, 9, tzinfo=timezone.utc)
    ours = [emu.add_mailbox(f"{_FIRST[i % 10]}{i // 10 or ''}@{OUR_DOMAIN}") for i in range(mailboxes)]
    people = [f"{name}@{domain}" for domain in CUSTOMERS for name in _FIRST[:6]]
    counts = {"mailboxes": len(ours), "messages": 0, "events": 0}
    while counts["messages"] < messages:
        box = rng.choice(ours)
        when = begin + timedelta(minutes=rng.randrange(0, 60 * 24 * 180))
        kind = rng.random()
        if kind < 0.1:  # a newsletter from a customer's list
            emu.add_message(box, "inbox", sender=f"news@{rng.choice(CUSTOMERS)}", to=[box],
                            subject="Monthly update", sent=when,
                            headers=[("List-Id", "<news.example>"), ("Precedence", "bulk")])
            counts["messages"] += 1
        elif kind < 0.2:  # internal only
            other = rng.choice(ours)
            emu.add_message(box, "sentitems", sender=box, to=[other], subject="Internal", sent=when)
            counts["messages"] += 1
        else:  # a thread with a customer, sometimes answered
            counts["messages"] += _thread(emu, rng, box, rng.choice(people), when)
    for box in ours:
        counts["events"] += _meetings(emu, rng, box, rng.sample(people, 3), begin)
    return counts


def _thread(emu: GraphEmulator, rng: random.Random, box: Any, customer: str,
            when: datetime) -> int:
    conversation = f"AAQkAD{rng.getrandbits(128):032x}"
    first = f"<{rng.getrandbits(64):016x}@{OUR_DOMAIN}>"
    emu.add_message(box, "sentitems", sender=box, to=[customer], subject="Proposal", sent=when,
                    internet_message_id=first, conversation_id=conversation)
    if rng.random() < 0.6:
        emu.add_message(box, "inbox", sender=customer, to=[box], subject="RE: Proposal",
                        sent=when + timedelta(hours=rng.randrange(1, 48)),
                        conversation_id=conversation,
                        headers=[("In-Reply-To", first), ("References", first)])
        return 2
    return 1


def _meetings(emu: GraphEmulator, rng: random.Random, box: Any, guests: list[str],
              begin: datetime) -> int:
    weekly = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"]},
              "range": {"type": "numbered", "startDate": (begin + timedelta(days=1)).date().isoformat(),
                        "numberOfOccurrences": 8}}
    first = begin + timedelta(days=1)
    emu.add_event(box, subject="Weekly sync", start=first, end=first + timedelta(minutes=30),
                  organizer=box, attendees=[(guests[0], "accepted")], recurrence=weekly)
    for i, response in enumerate(("accepted", "declined", "none")):
        at = begin + timedelta(days=7 * (i + 2), hours=rng.randrange(0, 6))
        emu.add_event(box, subject=f"Review {i + 1}", start=at, end=at + timedelta(hours=1),
                      organizer=box, attendees=[(guests[i], response)])
    return 4
