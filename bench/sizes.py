"""The data sizes the harness runs: accounts, contacts and interactions in proportion."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    name: str
    accounts: int
    contacts: int
    interactions: int


#: 1 account : 10 contacts : 100 interactions, as in the issue's 10k / 100k / 1M.
SIZES: dict[str, Size] = {s.name: s for s in (
    Size("tiny", 20, 200, 2_000),
    Size("10k", 100, 1_000, 10_000),
    Size("100k", 1_000, 10_000, 100_000),
    Size("1m", 10_000, 100_000, 1_000_000),
    # not in the default run: ten times the 1m export and its import (see bench/RESULTS.md)
    Size("10m", 100_000, 1_000_000, 10_000_000),
)}
DEFAULT = ("10k", "100k", "1m")
