"""Which records of several CRM sources are the same company, person or colleague: the
merge of sources into one portfolio, decided in one place.

:func:`plan_merge` takes each source's accounts, contacts and users and the rules of the
``[identity.match]`` table (:class:`MatchRules`) and answers with a :class:`MergePlan`:
the groups of records that are one account, one contact or one of our users, the rule
that joined each record, and the :class:`Conflict` s it left apart.

- **Accounts** join by normalised domain (``https://www.Bank.com/`` is ``bank.com``;
  public mail domains and our own never count) and, when ``account_name`` is on, by
  company name without its legal form (``Pinnacle Bank Ltd`` is ``Pinnacle Bank plc``,
  ``东海移动有限公司`` is ``东海移动``).
- **Contacts** join by canonical email (aliases as :func:`~crmlink.core.identity.canonical_address`
  decides) when their names agree and their accounts are one merged account; with
  ``contact_name`` on, contacts without an email also join by name within one merged account.
- **Users** (our people) join by canonical email.
- ``[identity.overrides]`` entries between records (``"hubspot:account:123" =
  "salesforce:account:0015g00000AbC"``) join them whatever the rules say;
  ``identity.never_merge`` pairs of records keep them apart.

Never a silent merge: a group never holds two records of one source, and where a rule
points at records it cannot join (one domain on two accounts of one source, one email on
two people with different names, a join that would put two accounts of one source
together) nothing is joined and a :class:`Conflict` says what to write in the config to
decide it. A pair the config already decided (joined by an override, or kept apart by
``never_merge``) is no conflict.

Which record of a group is the **primary** (whose name, owner and tier the merged record
takes, and whose id it keeps) follows the source order: ``identity.match.source_order``,
then the other sources, the most recently synced first.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmlink.core.errors import ConfigError
from crmlink.core.identity import (
    IDENTITY_DEFAULTS,
    IdentitySettings,
    canonical_address,
    normalize_address,
    normalize_domain,
)
from crmlink.core.model import Account, Contact, User

#: The ``[identity.match]`` table of the config file and its defaults (docs/method.md).
MATCH_DEFAULTS: dict[str, Any] = IDENTITY_DEFAULTS["match"]

ACCOUNT, CONTACT, USER = "account", "contact", "user"

#: Ref: a record as ``(kind, source, remote_id)``.
Ref = tuple[str, str, str]


def ref_text(ref: Ref) -> str:
    """``SOURCE:kind:ID``, the form the config file uses for a record."""
    kind, source, remote_id = ref
    return f"{source}:{kind}:{remote_id}"


@dataclass(frozen=True)
class MatchRules:
    """The ``[identity.match]`` table, checked (see :data:`MATCH_DEFAULTS`)."""

    enabled: bool = True
    account_domain: bool = True
    account_name: bool = False
    contact_email: bool = True
    contact_name: bool = False
    source_order: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> MatchRules:
        """From the whole config (its ``identity.match`` table)."""
        table = dict(MATCH_DEFAULTS) | dict(((config or {}).get("identity") or {}).get("match") or {})
        unknown = sorted(set(table) - set(MATCH_DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown setting 'identity.match.{unknown[0]}' in the config file; the "
                              f"[identity.match] table takes: {', '.join(MATCH_DEFAULTS)}")
        for key in ("enabled", "account_domain", "account_name", "contact_email", "contact_name"):
            if not isinstance(table[key], bool):
                raise ConfigError(f"identity.match.{key} must be true or false, not {table[key]!r}")
        order = table["source_order"]
        if not isinstance(order, list | tuple) or not all(isinstance(s, str) for s in order):
            raise ConfigError(f"identity.match.source_order must be a list of source names, not {order!r}")
        return cls(table["enabled"], table["account_domain"], table["account_name"], table["contact_email"],
                   table["contact_name"], tuple(order))


def source_order(sources: Iterable[str], configured: Sequence[str],
                 last_synced: Mapping[str, datetime | None]) -> list[str]:
    """``sources`` with the primary first: those in ``configured`` in its order, then the
    rest by their latest sync (most recent first; never synced last), then by name."""
    listed = [s for s in configured if s in set(sources)]
    rest = sorted(set(sources) - set(listed),
                  key=lambda s: (last_synced.get(s) is None, -(_stamp(last_synced.get(s))), s))
    return listed + rest


def _stamp(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


# -- normalising names -------------------------------------------------------------------

#: Legal forms dropped from the end of a company name before comparing (lower case, no dots).
LEGAL_FORMS: frozenset[str] = frozenset({
    "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "llc", "llp",
    "lp", "plc", "gmbh", "mbh", "ag", "kg", "se", "sa", "sas", "sarl", "srl", "spa", "bv", "nv",
    "oy", "ab", "as", "asa", "aps", "kk", "pty", "pte", "bhd", "sdn", "group", "holding", "holdings",
})
#: Legal forms written without spaces (Chinese, Japanese), dropped from either end.
CJK_LEGAL_FORMS: tuple[str, ...] = ("股份有限公司", "有限责任公司", "有限公司", "集团", "株式会社", "公司")


def company_key(name: str | None) -> str | None:
    """A company name without case, punctuation or legal form, for comparing; ``None``
    when nothing is left (``"Pinnacle Bank, Ltd."`` and ``"pinnacle bank plc"`` are both
    ``"pinnacle bank"``)."""
    if not name:
        return None
    text = unicodedata.normalize("NFKC", name).casefold()
    text = re.sub(r"[.,()&'\"/\\-]+", " ", text)
    changed = True
    while changed:
        changed = False
        for form in CJK_LEGAL_FORMS:
            stripped = text.strip()
            if stripped.endswith(form) and len(stripped) > len(form):
                text, changed = stripped[: -len(form)], True
            elif stripped.startswith(form) and len(stripped) > len(form):
                text, changed = stripped[len(form):], True
        words = text.split()
        while len(words) > 1 and words[-1] in LEGAL_FORMS:
            words.pop()
            changed = True
        text = " ".join(words)
        changed = changed and bool(text)
    return text.strip() or None


def person_key(name: str | None) -> tuple[str, ...] | None:
    """A person's name as its sorted words, without case or punctuation (``"Fischer,
    Lena"`` is ``"lena fischer"``); ``None`` for no name."""
    if not name:
        return None
    text = unicodedata.normalize("NFKC", name).casefold()
    words = re.sub(r"[.,()'\"-]+", " ", text).split()
    return tuple(sorted(words)) or None


# -- the plan ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Joined:
    """One record of a merged group and the rule that joined it: ``domain``, ``name``,
    ``email`` or ``override``, with the value it matched on."""

    source: str
    remote_id: str
    rule: str
    value: str


@dataclass(frozen=True)
class Conflict:
    """Records a rule pointed at but that were left apart, and how to decide.

    ``kind`` is ``shared_domain`` / ``shared_name`` (one source has two accounts with
    it), ``shared_email`` (one source has two contacts or users with it),
    ``names_differ`` (one email, different names), ``accounts_apart`` (one email at
    accounts that are not one), ``same_source`` (the join would put two records of one
    source together) or ``unknown_record`` (an override names a record not in the store).
    """

    kind: str
    entity: str
    value: str
    records: tuple[str, ...]
    message: str
    decide: str


@dataclass
class MergePlan:
    """The groups of records that are one, by kind; every record not listed is alone.

    ``groups[kind]`` lists each group's members primary first (:meth:`members`);
    ``joined[kind][ref]`` is how each member was joined.
    """

    order: list[str]
    groups: dict[str, list[list[Ref]]] = field(default_factory=dict)
    joined: dict[str, dict[Ref, Joined]] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)

    def group_of(self, kind: str) -> dict[Ref, list[Ref]]:
        """Each grouped record of ``kind`` -> its group (primary first)."""
        return {ref: group for group in self.groups.get(kind, []) for ref in group}

    def joined_count(self, kind: str) -> int:
        """How many merged records of ``kind`` stand for two or more source records."""
        return len(self.groups.get(kind, []))


@dataclass
class SourceRecords:
    """One source's live accounts, contacts and users."""

    accounts: Sequence[Account]
    contacts: Sequence[Contact]
    users: Sequence[User]


class _Groups:
    """Union-find over records, refusing joins that put two records of one source
    together or split a ``never_merge`` pair."""

    def __init__(self, settings: IdentitySettings) -> None:
        self.parent: dict[Ref, Ref] = {}
        self.members: dict[Ref, set[Ref]] = {}
        self.how: dict[Ref, Joined] = {}
        self.settings = settings

    def find(self, ref: Ref) -> Ref:
        if ref not in self.parent:
            self.parent[ref], self.members[ref] = ref, {ref}
        root = ref
        while self.parent[root] != root:
            root = self.parent[root]
        self.parent[ref] = root
        return root

    def together(self, a: Ref, b: Ref) -> bool:
        return self.find(a) == self.find(b)

    def kept_apart(self, a: Ref, b: Ref) -> bool:
        return bool(self.settings.never_merge) and self.settings.never(ref_text(a), ref_text(b))

    def decided(self, a: Ref, b: Ref) -> bool:
        """The config or an earlier join already says whether ``a`` and ``b`` are one."""
        return self.together(a, b) or self.kept_apart(a, b)

    def join(self, a: Ref, b: Ref, rule: str, value: str) -> str | None:
        """Join ``a``'s and ``b``'s groups; the reason when refused (``same_source``,
        ``never``), else ``None``."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        left, right = self.members[ra], self.members[rb]
        if {r[1] for r in left} & {r[1] for r in right}:
            return "same_source"
        if any(self.kept_apart(x, y) for x in left for y in right):
            return "never"
        for ref in (a, b):
            self.how.setdefault(ref, Joined(ref[1], ref[2], rule, value))
        self.parent[rb] = ra
        self.members[ra] = left | right
        del self.members[rb]
        return None

    def groups(self, rank: Mapping[str, int]) -> list[list[Ref]]:
        found = [sorted(m, key=lambda r: (rank.get(r[1], len(rank)), r[1], r[2]))
                 for m in self.members.values() if len(m) > 1]
        return sorted(found, key=lambda g: (rank.get(g[0][1], len(rank)), g[0][1], g[0][2]))


def plan_merge(records: Mapping[str, SourceRecords], settings: IdentitySettings, rules: MatchRules,
               order: Sequence[str], internal_domains: Iterable[str] = ()) -> MergePlan:
    """The merge of ``records`` (by source) under ``rules`` and the overrides and
    ``never_merge`` pairs of ``settings``; ``order`` ranks the sources for the primary
    record of each group. The groups do not depend on ``order``."""
    rank = {source: i for i, source in enumerate(order)}
    plan = _Planner(records, settings, rules, frozenset(internal_domains))
    plan.accounts()
    plan.users()
    plan.contacts()
    result = MergePlan(list(order))
    for kind, groups in plan.by_kind.items():
        result.groups[kind] = groups.groups(rank)
        result.joined[kind] = {ref: groups.how[ref] for group in result.groups[kind] for ref in group
                               if ref in groups.how}
    result.conflicts = plan.conflicts
    return result


class _Planner:
    def __init__(self, records: Mapping[str, SourceRecords], settings: IdentitySettings, rules: MatchRules,
                 internal: frozenset[str]) -> None:
        self.records, self.settings, self.rules, self.internal = records, settings, rules, internal
        self.by_kind = {kind: _Groups(settings) for kind in (ACCOUNT, CONTACT, USER)}
        self.conflicts: list[Conflict] = []
        self.known: dict[str, set[Ref]] = {
            ACCOUNT: {(ACCOUNT, s, a.remote_id) for s, r in records.items() for a in r.accounts},
            CONTACT: {(CONTACT, s, c.remote_id) for s, r in records.items() for c in r.contacts},
            USER: {(USER, s, u.remote_id) for s, r in records.items() for u in r.users},
        }
        self.contact_account: dict[Ref, Ref | None] = {
            (CONTACT, s, c.remote_id): (ACCOUNT, s, c.account_id) if c.account_id else None
            for s, r in records.items() for c in r.contacts}

    # -- shared steps ----------------------------------------------------------------------

    def overrides(self, kind: str) -> None:
        for source_ref, target_ref in sorted(self.settings.links.items()):
            if source_ref[0] != kind:
                continue
            missing = [r for r in (source_ref, target_ref) if r not in self.known[kind]]
            if missing:
                self.conflict("unknown_record", kind, ref_text(missing[0]), (source_ref, target_ref),
                              f"the override {ref_text(source_ref)} = {ref_text(target_ref)} names "
                              f"{ref_text(missing[0])}, which is not in the store",
                              "correct or remove the entry in [identity.overrides]")
                continue
            reason = self.by_kind[kind].join(source_ref, target_ref, "override", ref_text(target_ref))
            if reason == "same_source":
                self.conflict("same_source", kind, ref_text(target_ref), (source_ref, target_ref),
                              f"the override {ref_text(source_ref)} = {ref_text(target_ref)} would put two "
                              f"{kind}s of one source together",
                              "remove one of the overrides that join them")

    def bucket(self, kind: str, buckets: Mapping[str, list[Ref]], rule: str,
               agree: Any = None) -> None:
        """Join each bucket's records (one value of ``rule``) across sources, in the
        order of the values: a bucket with two records of one source, or whose records
        ``agree`` refuses, joins nothing and is a conflict unless the config decided it."""
        groups = self.by_kind[kind]
        for value in sorted(buckets):
            refs = sorted(set(buckets[value]))
            if len({r[1] for r in refs}) < 2:
                continue
            per_source = defaultdict(list)
            for ref in refs:
                per_source[ref[1]].append(ref)
            undecided = [(a, b) for i, a in enumerate(refs) for b in refs[i + 1:]
                         if a[1] != b[1] and not groups.decided(a, b)]
            crowded = [rs for rs in per_source.values() if len(rs) > 1]
            if crowded:
                if undecided:
                    self.shared(kind, rule, value, refs, crowded[0])
                continue
            refusal = agree(refs) if agree else None
            if refusal is not None:
                if undecided:
                    self.conflict(refusal[0], kind, value, tuple(refs), refusal[1], _decide_pairs(undecided))
                continue
            self.join_all(kind, refs, rule, value)

    def join_all(self, kind: str, refs: Sequence[Ref], rule: str, value: str) -> None:
        groups = self.by_kind[kind]
        first = refs[0]
        for other in refs[1:]:
            if groups.together(first, other) or groups.kept_apart(first, other):
                continue
            if groups.join(first, other, rule, value) == "same_source":
                apart = sorted(groups.members[groups.find(first)] | groups.members[groups.find(other)])
                self.conflict("same_source", kind, value, tuple(apart),
                              f"{rule} {value} would join {ref_text(first)} and {ref_text(other)}, but that "
                              f"would put two {kind}s of one source together",
                              _decide_pairs([(first, other)]))

    def shared(self, kind: str, rule: str, value: str, refs: Sequence[Ref], crowded: Sequence[Ref]) -> None:
        names = " and ".join(ref_text(r) for r in crowded)
        what = {"domain": "shared_domain", "name": "shared_name"}.get(rule, "shared_email")
        self.conflict(what, kind, value, tuple(refs),
                      f"{value} is the {rule} of {names} in one source, so no record is joined on it",
                      "to join one of them with a record of another source, write "
                      f"[identity.overrides] \"{ref_text(next(r for r in refs if r[1] != crowded[0][1]))}\" = "
                      f"\"{ref_text(crowded[0])}\"; to keep them apart, write identity.never_merge = "
                      f"[[...]] pairs of the records")

    def conflict(self, kind: str, entity: str, value: str, refs: Sequence[Ref], message: str, decide: str) -> None:
        self.conflicts.append(Conflict(kind, entity, value, tuple(ref_text(r) for r in refs), message, decide))

    # -- per kind ----------------------------------------------------------------------------

    def accounts(self) -> None:
        self.overrides(ACCOUNT)
        public = self.settings.public_domains
        if self.rules.account_domain:
            by_domain: dict[str, list[Ref]] = defaultdict(list)
            for source, recs in self.records.items():
                for account in recs.accounts:
                    domain = normalize_domain(account.domain)
                    if domain and domain not in public and domain not in self.internal:
                        by_domain[domain].append((ACCOUNT, source, account.remote_id))
            self.bucket(ACCOUNT, by_domain, "domain")
        if self.rules.account_name:
            by_name: dict[str, list[Ref]] = defaultdict(list)
            for source, recs in self.records.items():
                for account in recs.accounts:
                    key = company_key(account.name)
                    if key:
                        by_name[key].append((ACCOUNT, source, account.remote_id))
            self.bucket(ACCOUNT, by_name, "name")

    def users(self) -> None:
        by_email: dict[str, list[Ref]] = defaultdict(list)
        for source, recs in self.records.items():
            for user in recs.users:
                address = normalize_address(user.email)
                if address:
                    by_email[canonical_address(address)].append((USER, source, user.remote_id))
        self.bucket(USER, by_email, "email")

    def contacts(self) -> None:
        self.overrides(CONTACT)
        names = {(CONTACT, s, c.remote_id): person_key(c.name) for s, r in self.records.items() for c in r.contacts}
        emails: dict[Ref, str] = {}
        for source, recs in self.records.items():
            for contact in recs.contacts:
                address = normalize_address(contact.email)
                if address:
                    emails[(CONTACT, source, contact.remote_id)] = canonical_address(address)
        if self.rules.contact_email:
            by_email: dict[str, list[Ref]] = defaultdict(list)
            for ref, address in emails.items():
                by_email[address].append(ref)
            self.bucket(CONTACT, by_email, "email", lambda refs: self.contacts_disagree(refs, names))
        if self.rules.contact_name:
            by_name: dict[str, list[Ref]] = defaultdict(list)
            for ref, name in names.items():
                account = self.merged_account(ref)
                if name and account and ref not in emails:
                    by_name[f"{' '.join(name)} at {ref_text(account)}"].append(ref)
            self.bucket(CONTACT, by_name, "name", lambda refs: self.contacts_disagree(refs, names))

    def merged_account(self, contact: Ref) -> Ref | None:
        account = self.contact_account.get(contact)
        return None if account is None else self.by_kind[ACCOUNT].find(account)

    def contacts_disagree(self, refs: Sequence[Ref], names: Mapping[Ref, tuple[str, ...] | None]
                          ) -> tuple[str, str] | None:
        """Why the contacts ``refs`` cannot be one person, or ``None``."""
        known = {names[r] for r in refs if names.get(r)}
        if len(known) > 1:
            listed = ", ".join(f"{ref_text(r)} ({' '.join(names[r] or ()) or 'no name'})" for r in refs)
            return "names_differ", f"one email is on contacts with different names: {listed}"
        accounts = {self.merged_account(r) for r in refs} - {None}
        if len(accounts) > 1:
            listed = ", ".join(ref_text(r) for r in refs)
            return ("accounts_apart", f"the contacts {listed} share an email but their accounts are not one "
                    "account in the audit")
        return None


def _decide_pairs(pairs: Sequence[tuple[Ref, Ref]]) -> str:
    a, b = pairs[0]
    return (f"to join them write [identity.overrides] \"{ref_text(b)}\" = \"{ref_text(a)}\"; to keep them apart "
            f"write identity.never_merge = [[\"{ref_text(a)}\", \"{ref_text(b)}\"]]")


__all__ = ["MATCH_DEFAULTS", "MatchRules", "MergePlan", "Joined", "Conflict", "SourceRecords", "plan_merge",
           "source_order", "company_key", "person_key", "ref_text", "Ref"]
