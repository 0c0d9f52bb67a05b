"""Expectations per account for a review period: an expected tier, stage, level and
health, from the account's CRM fields, the config file's ``[expectations]`` and a CSV
file, each later one winning field by field (docs/evaluation.md)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmlink.core.errors import ConfigError, CrmlinkError, ExitCode
from crmlink.core.evaluation.period import Period
from crmlink.core.evaluation.vocab import LEVELS, STAGES, TIERS, parse
from crmlink.core.model import Account

FIELDS = ("tier", "stage", "level", "health")


class InvalidInput(CrmlinkError):
    """An expectations file cannot be read: the message names the file, line and column."""

    exit_code = ExitCode.BAD_INPUT

CSV_COLUMNS = ("remote_id", "source", "period", *FIELDS)


@dataclass
class Expectation:
    """What was expected of one account (``None``: nothing expected of that field)."""

    tier: str | None = None
    stage: str | None = None
    level: str | None = None
    health: float | None = None
    #: where each expected field came from: crm, config or csv
    origin: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: value for name in FIELDS if (value := getattr(self, name)) is not None}

    def set(self, name: str, value: Any, origin: str) -> None:
        setattr(self, name, value)
        self.origin = {**(self.origin or {}), name: origin}

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in FIELDS)


def coerce(name: str, raw: Any) -> Any:
    """An expected value from text or TOML; ``ValueError`` saying what is accepted."""
    if raw is None or str(raw).strip() == "":
        return None
    if name == "tier":
        tier = str(raw).strip().upper()
        if tier not in TIERS:
            raise ValueError(f"{raw!r} is not a tier; use S, A, B or C")
        return tier
    if name == "health":
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{raw!r} is not a number from 0 to 100") from None
        if not 0 <= value <= 100:
            raise ValueError(f"{raw!r} is not a number from 0 to 100")
        return value
    return parse(raw, STAGES if name == "stage" else LEVELS)


def from_crm(accounts: Iterable[Account], fields: Mapping[str, list[str]]) -> dict[str, Expectation]:
    """Expectations recorded on the accounts (``review.expected_fields``); a value that
    is not valid is skipped, never fatal (the CRM is not ours to fix here)."""
    found: dict[str, Expectation] = {}
    for account in accounts:
        extra = account.extra or {}
        for name in FIELDS:
            for field in fields.get(name, []):
                try:
                    value = coerce(name, extra.get(field))
                except ValueError:
                    continue
                if value is not None:
                    found.setdefault(account.id, Expectation()).set(name, value, "crm")
                    break
    return found


def _key(ref: str, ids: Mapping[str, list[str]]) -> list[str]:
    """The global ids an expectation's account reference names (remote id or source:id)."""
    return [ref] if ref in {g for gids in ids.values() for g in gids} else ids.get(ref, [])


def from_config(table: Mapping[str, Any], ids: Mapping[str, list[str]], merged: dict[str, Expectation]) -> None:
    """``[expectations."ACC-001"] stage = "community_of_interest"`` (or ``"source:ACC-001"``)."""
    for ref, values in table.items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"expectations.{ref} must be a table of {', '.join(FIELDS)}")
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown setting 'expectations.{ref}.{unknown[0]}'; expectations are "
                              + ", ".join(FIELDS))
        targets = _key(str(ref), ids)
        if not targets:
            raise ConfigError(f"expectations.{ref}: the store has no account {ref!r}")
        for name, raw in values.items():
            try:
                value = coerce(name, raw)
            except ValueError as exc:
                raise ConfigError(f"expectations.{ref}.{name}: {exc}") from None
            for gid in targets:
                merged.setdefault(gid, Expectation()).set(name, value, "config")


def from_csv(path: Path, period: Period, ids: Mapping[str, list[str]], merged: dict[str, Expectation]) -> None:
    """Rows of a CSV file: ``remote_id`` and any of tier, stage, level, health; an
    optional ``source`` and ``period`` (a row for another period is skipped)."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ConfigError(f"cannot read the expectations file {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if "remote_id" not in header:
            raise InvalidInput(f"{path}, line 1: the expectations file needs a remote_id column "
                               f"(columns: {', '.join(CSV_COLUMNS)})")
        unknown = [h for h in header if h not in CSV_COLUMNS]
        if unknown:
            raise InvalidInput(f"{path}, line 1, column {header.index(unknown[0]) + 1}: unknown column "
                               f"{unknown[0]!r}; use {', '.join(CSV_COLUMNS)}")
        reader.fieldnames = header
        for line, row in enumerate(reader, start=2):
            _csv_row(path, line, header, row, period, ids, merged)


def _csv_row(path: Path, line: int, header: list[str], row: Mapping[str, Any], period: Period,
             ids: Mapping[str, list[str]], merged: dict[str, Expectation]) -> None:
    def where(column: str) -> str:
        return f"{path}, line {line}, column {header.index(column) + 1} ({column})"

    if (row.get("period") or "").strip() not in ("", period.name):
        return
    ref = (row.get("remote_id") or "").strip()
    source = (row.get("source") or "").strip()
    targets = _key(f"{source}:{ref}" if source else ref, ids)
    if not targets:
        raise InvalidInput(f"{where('remote_id')}: the store has no account {ref!r}"
                           + (f" in source {source!r}" if source else ""))
    for name in FIELDS:
        if name not in header:
            continue
        try:
            value = coerce(name, row.get(name))
        except ValueError as exc:
            raise InvalidInput(f"{where(name)}: {exc}") from None
        if value is not None:
            for gid in targets:
                merged.setdefault(gid, Expectation()).set(name, value, "csv")


def expectations(accounts: list[Account], config: Mapping[str, Any], period: Period,
                 csv_path: Path | None = None) -> dict[str, Expectation]:
    """Every account's expectation for ``period``, by global id."""
    ids: dict[str, list[str]] = {}
    for account in accounts:
        ids.setdefault(account.remote_id, []).append(account.id)
    merged = from_crm(accounts, config["review"]["expected_fields"])
    from_config(config.get("expectations", {}), ids, merged)
    if csv_path is not None:
        from_csv(csv_path, period, ids, merged)
    return {gid: e for gid, e in merged.items() if not e.empty}
