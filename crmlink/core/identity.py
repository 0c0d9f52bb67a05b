"""Who an email address is: one of our users, a customer's contact, an account's
unknown person, or nobody we may keep. The one place crmlink decides identity.

A :class:`Directory` holds one CRM source's accounts, contacts and users; an
:class:`IdentityResolver` holds a directory for each CRM source in the store and the
settings of the ``[identity]`` table (:class:`IdentitySettings`). ``resolve(address)``
answers with a :class:`Match`:

- **user**: the address (or an alias of it) is one of our users' emails;
- **contact**: it is a contact's email, case-insensitive, or an alias of it
  (``lena+deals@bank.com`` is ``lena@bank.com``; at Gmail ``l.ena@gmail.com`` is
  ``lena@gmail.com``); two contacts with the same address are *ambiguous*;
- **internal**: one of our domains, but no user has that address;
- **account**: an address at an account's domain (the account's ``domain`` field, or a
  domain its contacts' emails use) that no contact has: an *unknown person*;
- **ambiguous**: the address, or its domain, points at two or more contacts or accounts:
  never a guess, it resolves to nothing and :attr:`Directory.ambiguous` counts it;
- **public**: a public mail domain (gmail.com, qq.com ... :data:`PUBLIC_MAIL_DOMAINS`),
  which never maps to an account; **unknown**: anything else.

Overrides (``[identity.overrides]``) map an address or a domain to ``"account:ID"``,
``"contact:ID"`` (optionally ``"SOURCE:account:ID"``), ``"internal"`` or ``"nobody"``.
An address's override wins over everything; a domain's wins over everything but the
users and contacts who have that exact address (or an alias of it). ``never_merge`` pairs keep an alias or a domain from
matching: ``["j.smith@gmail.com", "jsmith@gmail.com"]`` keeps two people apart,
``["bank.com", "account:A7"]`` keeps a domain off an account.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmlink.core.errors import ConfigError
from crmlink.core.model import Account, Contact, Record, User

#: Mail domains anyone can sign up at: an address there says nothing about its company.
#: Extend it with ``[identity] public_domains``.
PUBLIC_MAIL_DOMAINS: frozenset[str] = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
    "yahoo.com", "yahoo.co.uk", "yahoo.co.jp", "ymail.com", "aol.com", "icloud.com", "me.com",
    "mac.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de",
    "mail.com", "mail.ru", "yandex.ru", "yandex.com", "zoho.com", "fastmail.com",
    "qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "sina.com", "sohu.com",
    "aliyun.com", "139.com", "naver.com", "hanmail.net", "rediffmail.com",
})
#: Domains where dots in the local part do not matter (Gmail ignores them).
DOTLESS_DOMAINS: frozenset[str] = frozenset({"gmail.com", "googlemail.com"})

#: The ``[identity]`` table of the config file and its defaults (docs/method.md).
IDENTITY_DEFAULTS: dict[str, Any] = {
    "internal_domains": [],        # our own mail domains (besides our users' domains)
    "public_domains": [],          # more public mail domains, added to PUBLIC_MAIL_DOMAINS
    "overrides": {},               # address or domain -> "account:ID" | "contact:ID" | "internal" | "nobody"
    "never_merge": [],             # pairs of addresses, domains or "account:ID"/"contact:ID" never matched
    "count_unknown_people": False,  # unknown people at an account count for the broad layer
    "store_subjects": False,       # keep mail subjects and meeting titles
    "history_days": 730.0,         # recurring meetings are expanded from this many days ago
    # how several CRM sources merge into one portfolio (crmlink.core.merge)
    "match": {
        "enabled": True,          # audit several CRM sources as one portfolio
        "account_domain": True,   # accounts with one normalised domain are one account
        "account_name": False,    # ... and accounts with one company name (legal form stripped)
        "contact_email": True,    # contacts with one canonical email (and agreeing names) are one person
        "contact_name": False,    # contacts without email: one name within one merged account is one person
        "source_order": [],       # the primary sources first; the others after, latest sync first
    },
}

USER, CONTACT, INTERNAL, ACCOUNT, AMBIGUOUS, PUBLIC, UNKNOWN = (
    "user", "contact", "internal", "account", "ambiguous", "public", "unknown")


def normalize_address(value: str | None) -> str | None:
    """``value`` as a lower-case ``local@domain`` address, or ``None`` when it is not one."""
    if not value:
        return None
    text = value.strip().strip("<>").strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or " " in text:
        return None
    return f"{local}@{domain.rstrip('.')}"


def canonical_address(address: str) -> str:
    """The alias-free form of a normalised address: no ``+tag``, and no dots in the local
    part at Gmail (:data:`DOTLESS_DOMAINS`)."""
    local, _, domain = address.rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def normalize_domain(value: str | None) -> str | None:
    """A bare lower-case domain from ``bank.com``, ``www.bank.com``, ``https://bank.com/x``
    or an address; ``None`` when there is none."""
    if not value:
        return None
    text = value.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].rpartition("@")[2].split(":", 1)[0].strip(".")
    if text.startswith("www."):
        text = text[4:]
    return text if "." in text and " " not in text else None


def _parents(domain: str) -> Iterable[str]:
    """``mail.eu.bank.com``, ``eu.bank.com``, ``bank.com``: the domain and its parents of
    two labels or more."""
    labels = domain.split(".")
    for start in range(0, max(1, len(labels) - 1)):
        yield ".".join(labels[start:])


@dataclass(frozen=True)
class Target:
    """What an override points at: an account or a contact (of one source, or of any
    source that has the id), or ``internal``/``nobody``."""

    kind: str
    remote_id: str | None = None
    source: str | None = None

    @classmethod
    def parse(cls, text: str, where: str) -> Target:
        value = str(text).strip()
        if value in (INTERNAL, "nobody"):
            return cls(value)
        parts = value.split(":")
        if len(parts) == 2 and parts[0] in (ACCOUNT, CONTACT) and parts[1]:
            return cls(parts[0], parts[1])
        if len(parts) >= 3 and parts[1] in (ACCOUNT, CONTACT) and parts[0]:
            return cls(parts[1], ":".join(parts[2:]), parts[0])
        raise ConfigError(f"{where} = {text!r} is not an override target; use \"account:ID\", "
                          "\"contact:ID\", \"SOURCE:account:ID\", \"internal\" or \"nobody\"")

    def applies_to(self, source: str) -> bool:
        return self.source is None or self.source == source


@dataclass(frozen=True)
class IdentitySettings:
    """The ``[identity]`` table of the config file, checked (see :data:`IDENTITY_DEFAULTS`)."""

    internal_domains: frozenset[str] = frozenset()
    public_domains: frozenset[str] = PUBLIC_MAIL_DOMAINS
    overrides: Mapping[str, Target] = field(default_factory=dict)
    never_merge: frozenset[frozenset[str]] = frozenset()
    count_unknown_people: bool = False
    store_subjects: bool = False
    history_days: float = 730.0
    #: ``"SOURCE:kind:ID" = "SOURCE:kind:ID"`` overrides: records of two sources that are one
    #: (``(kind, source, remote_id)`` -> the same), for :mod:`crmlink.core.merge`
    links: Mapping[tuple[str, str, str], tuple[str, str, str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None,
                    internal_domains: Iterable[str] = ()) -> IdentitySettings:
        """From the whole config (its ``identity`` table) plus ``--internal-domain`` flags."""
        table = dict(IDENTITY_DEFAULTS) | dict((config or {}).get("identity") or {})
        unknown = sorted(set(table) - set(IDENTITY_DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown setting 'identity.{unknown[0]}' in the config file; the "
                              f"[identity] table takes: {', '.join(IDENTITY_DEFAULTS)}")
        internal = {d for d in map(normalize_domain, [*_strings(table, "internal_domains"), *internal_domains]) if d}
        public = {d for d in map(normalize_domain, _strings(table, "public_domains")) if d}
        overrides: dict[str, Target] = {}
        links: dict[tuple[str, str, str], tuple[str, str, str]] = {}
        for key, value in dict(table["overrides"]).items():
            record = record_ref(key)
            if record is not None:
                links[record] = _linked(record, value, key)
                continue
            name = normalize_address(key) or normalize_domain(key)
            if name is None:
                raise ConfigError(f"identity.overrides: {key!r} is neither an address nor a domain")
            overrides[name] = Target.parse(value, f"identity.overrides.{key!r}")
        pairs = set()
        for pair in table["never_merge"]:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ConfigError(f"identity.never_merge: {pair!r} is not a pair; write [\"a@x.com\", \"b@x.com\"]")
            pairs.add(frozenset(_merge_key(str(item)) for item in pair))
        return cls(frozenset(internal), PUBLIC_MAIL_DOMAINS | frozenset(public), overrides,
                   frozenset(pairs), bool(table["count_unknown_people"]), bool(table["store_subjects"]),
                   float(table["history_days"]), links)

    def never(self, a: str, b: str) -> bool:
        """Whether a ``never_merge`` pair keeps ``a`` and ``b`` apart."""
        return frozenset((_merge_key(a), _merge_key(b))) in self.never_merge


def _strings(table: Mapping[str, Any], key: str) -> list[str]:
    value = table[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"identity.{key} must be a list of strings, not {value!r}")
    return list(value)


def _merge_key(text: str) -> str:
    if record_ref(text) is not None:
        return text.strip()
    return normalize_address(text) or normalize_domain(text) or text.strip()


def record_ref(text: str) -> tuple[str, str, str] | None:
    """``(kind, source, remote_id)`` of a ``"SOURCE:account:ID"`` or ``"SOURCE:contact:ID"``
    reference to one record of one source; ``None`` for anything else."""
    parts = str(text).strip().split(":")
    if len(parts) >= 3 and parts[0] and parts[1] in (ACCOUNT, CONTACT) and parts[2]:
        return parts[1], parts[0], ":".join(parts[2:])
    return None


def _linked(record: tuple[str, str, str], value: Any, key: str) -> tuple[str, str, str]:
    target = record_ref(str(value))
    if target is None or target[0] != record[0] or target[1] == record[1]:
        raise ConfigError(
            f"identity.overrides.{key!r} = {value!r}: a record of one source is joined with a {record[0]} of "
            f"another source; write \"SOURCE:{record[0]}:ID\" with a source other than {record[1]!r}")
    return target


@dataclass(frozen=True)
class Match:
    """What an address resolved to in one directory (see the module's docstring).

    ``remote_id`` is the user's or contact's id, ``account_id`` the account's (for a
    contact, an unknown person or an account override); both refer to ``source``.
    """

    kind: str
    source: str | None = None
    remote_id: str | None = None
    account_id: str | None = None

    @property
    def ours(self) -> bool:
        """One of our people: a user, or an address at one of our domains."""
        return self.kind in (USER, INTERNAL)

    @property
    def customer(self) -> bool:
        """A person at a known account: a contact, or an unknown person there."""
        return self.kind in (CONTACT, ACCOUNT)


NOBODY = Match(UNKNOWN)


class Directory:
    """One CRM source's people and accounts, indexed for :meth:`resolve`."""

    def __init__(self, source: str, accounts: Iterable[Account], contacts: Iterable[Contact],
                 users: Iterable[User], settings: IdentitySettings,
                 internal_domains: frozenset[str] = frozenset()) -> None:
        self.source, self.settings = source, settings
        self.internal_domains = internal_domains or settings.internal_domains
        self.accounts = {a.remote_id: a for a in accounts if not a.deleted}
        self.contacts = {c.remote_id: c for c in contacts if not c.deleted}
        self.users: dict[str, set[str]] = {}
        self.users_alias: dict[str, set[str]] = {}
        for user in users:
            self._index(self.users, self.users_alias, user.email, user.remote_id)
        self.by_email: dict[str, set[str]] = {}
        self.by_alias: dict[str, set[str]] = {}
        self.domains: dict[str, set[str]] = {}
        for contact in self.contacts.values():
            self._index(self.by_email, self.by_alias, contact.email, contact.remote_id)
        for account in self.accounts.values():
            self._domain(normalize_domain(account.domain), account.remote_id)
        for contact in self.contacts.values():
            address = normalize_address(contact.email)
            if address and contact.account_id in self.accounts:
                self._domain(domain_of(address), contact.account_id)
        #: addresses and domains that resolved to more than one candidate, and how often
        self.ambiguous: Counter[str] = Counter()
        self.candidates: dict[str, tuple[str, ...]] = {}

    @staticmethod
    def _index(exact: dict[str, set[str]], alias: dict[str, set[str]], email: str | None, rid: str) -> None:
        address = normalize_address(email)
        if address:
            exact.setdefault(address, set()).add(rid)
            alias.setdefault(canonical_address(address), set()).add(rid)

    def _domain(self, domain: str | None, account_id: str | None) -> None:
        if (domain and account_id and domain not in self.settings.public_domains
                and domain not in self.internal_domains
                and not self.settings.never(domain, f"{ACCOUNT}:{account_id}")):
            self.domains.setdefault(domain, set()).add(account_id)

    def is_internal(self, address: str) -> bool:
        domain = domain_of(address)
        return any(parent in self.internal_domains for parent in _parents(domain))

    def resolve(self, address: str) -> Match:
        """What the normalised ``address`` is in this source (see the module docstring)."""
        overrides = self.settings.overrides
        override = self._override(overrides.get(address)) if overrides else None
        if override is not None:
            return override
        found = (self._person(address, self.users, self.users_alias, USER)
                 or self._person(address, self.by_email, self.by_alias, CONTACT))
        if found is not None:
            return found
        domain = domain_of(address)
        if overrides:  # a domain's override comes after the people who have an address there
            target = next((overrides[d] for d in _parents(domain) if d in overrides), None)
            override = self._override(target)
            if override is not None:
                return override
        if self.is_internal(address):
            return Match(INTERNAL, self.source)
        if domain in self.settings.public_domains:
            return Match(PUBLIC, self.source)
        return self._account(domain)

    def _override(self, target: Target | None) -> Match | None:
        if target is None or not target.applies_to(self.source):
            return None
        if target.kind == INTERNAL:
            return Match(INTERNAL, self.source)
        if target.kind == "nobody":
            return NOBODY
        if target.kind == CONTACT and target.remote_id in self.contacts:
            contact = self.contacts[target.remote_id]
            return Match(CONTACT, self.source, contact.remote_id, contact.account_id)
        if target.kind == ACCOUNT and target.remote_id in self.accounts:
            return Match(ACCOUNT, self.source, None, target.remote_id)
        return None  # a target of another source

    def _person(self, address: str, exact: dict[str, set[str]], alias: dict[str, set[str]],
                kind: str) -> Match | None:
        ids = exact.get(address)
        if not ids:
            ids = {rid for rid in alias.get(canonical_address(address), ())
                   if not self._kept_apart(address, kind, rid)}
        if not ids:
            return None
        if len(ids) > 1:
            return self._ambiguous(address, tuple(sorted(ids)), kind)
        rid = next(iter(ids))
        account = self.contacts[rid].account_id if kind == CONTACT else None
        return Match(kind, self.source, rid, account)

    def _kept_apart(self, address: str, kind: str, rid: str) -> bool:
        if not self.settings.never_merge:
            return False
        email = self.contacts[rid].email if kind == CONTACT else None
        return self.settings.never(address, f"{kind}:{rid}") or bool(email and self.settings.never(address, email))

    def _account(self, domain: str) -> Match:
        for parent in _parents(domain):
            accounts = self.domains.get(parent)
            if not accounts:
                continue
            if len(accounts) > 1:
                return self._ambiguous(parent, tuple(sorted(accounts)), ACCOUNT)
            return Match(ACCOUNT, self.source, None, next(iter(accounts)))
        return Match(UNKNOWN, self.source)

    def _ambiguous(self, key: str, candidates: tuple[str, ...], kind: str) -> Match:
        """Two or more candidates: never a guess. A contact address shared by contacts of
        one account still places the person at that account."""
        self.ambiguous[key] += 1
        self.candidates[key] = tuple(f"{kind}:{c}" for c in candidates)
        if kind == CONTACT:
            accounts = {self.contacts[c].account_id for c in candidates}
            if len(accounts) == 1 and None not in accounts:
                return Match(ACCOUNT, self.source, None, accounts.pop())
        return Match(AMBIGUOUS, self.source)


class IdentityResolver:
    """Every CRM source's :class:`Directory`, with our domains from the settings, the
    flags and our users' email addresses."""

    def __init__(self, directories: Sequence[Directory], settings: IdentitySettings) -> None:
        self.directories = list(directories)
        self.settings = settings

    @classmethod
    def from_records(cls, records: Callable[[str, str], Iterable[Record]], sources: Iterable[str],
                     settings: IdentitySettings) -> IdentityResolver:
        """Build from ``records(entity, source)`` (such as :meth:`Store.records
        <crmlink.core.store.Store.records>`) for each CRM source in ``sources``."""
        loaded = []
        for source in sources:
            accounts = [r for r in records("account", source) if isinstance(r, Account)]
            contacts = [r for r in records("contact", source) if isinstance(r, Contact)]
            users = [r for r in records("user", source) if isinstance(r, User)]
            loaded.append((source, accounts, contacts, users))
        ours = set(settings.internal_domains)
        for _, _, _, users in loaded:
            for user in users:
                address = normalize_address(user.email)
                if address and domain_of(address) not in settings.public_domains:
                    ours.add(domain_of(address))
        internal = frozenset(ours)
        return cls([Directory(source, accounts, contacts, users, settings, internal)
                    for source, accounts, contacts, users in loaded], settings)

    @property
    def sources(self) -> list[str]:
        return [d.source for d in self.directories]

    def ambiguities(self) -> dict[str, tuple[tuple[str, ...], int]]:
        """Each address or domain that resolved to several candidates: (candidates with
        their source, times seen)."""
        found: dict[str, tuple[tuple[str, ...], int]] = {}
        for directory in self.directories:
            for key, count in directory.ambiguous.items():
                named = tuple(f"{directory.source}:{c}" for c in directory.candidates[key])
                before = found.get(key, ((), 0))
                found[key] = (before[0] + named, before[1] + count)
        return found


__all__ = [
    "PUBLIC_MAIL_DOMAINS", "DOTLESS_DOMAINS", "IDENTITY_DEFAULTS", "IdentitySettings", "Target",
    "Match", "Directory", "IdentityResolver", "normalize_address", "canonical_address",
    "normalize_domain", "domain_of",
]
