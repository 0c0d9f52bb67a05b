"""The canonical relationship model every connector maps its CRM's objects to.

Records are plain dataclasses. Constructing one validates and coerces it: ISO 8601
strings become timezone-aware UTC datetimes, numbers become :class:`~decimal.Decimal`,
vocabulary fields take their canonical spelling (see :mod:`crmlink.core.vocab`). A value
that cannot be coerced raises :class:`InvalidRecord` naming the entity, the record's
``remote_id`` and the field, so a plugin author sees exactly which record is wrong.

Each field is declared once. Its annotation chooses the coercer (``str | None`` strips
text, ``datetime | None`` parses ISO 8601, a ``bool`` with a default takes blanks as the
default ...) and the SQL column type (:mod:`crmlink.core.schema`); a field that needs more
says so in its default: ``vocabulary("tier")`` for a vocabulary term, ``coerced(func)``
for anything else. Fields are coerced in declaration order, so the first bad one is
reported.

References between records (``account_id``, ``owner_id``, ``user_ids`` ...) hold the
*remote* ids of the same source. Values that were canonicalised keep their native
spelling in ``raw`` (for example ``raw["department"] == "网络运维部"``); native fields that
have no canonical home go to ``extra``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

from crmlink.core import vocab
from crmlink.core.errors import InvalidRecord

Coercer = Callable[[Any], Any]
R = TypeVar("R", bound="Record")


def parse_datetime(value: Any) -> datetime | None:
    """Parse an ISO 8601 date or date-time into an aware UTC datetime.

    Naive values are taken as UTC; a bare date means midnight UTC.
    """
    if value is None or value == "":
        return None
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value[10] == "T" \
            and value[4] == value[7] == "-" and value[13] == value[16] == ":":
        try:  # the usual export spelling, 2024-03-31T09:30:00Z: what the general case gives, faster
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is timezone.utc:
                return parsed
        except ValueError:
            pass  # the general case words the error
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    else:
        text = str(value).strip()
        if not text:
            return None
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":" and "T" in text:
            text = text[:-2] + ":" + text[-2:]  # Salesforce's +0000
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date or date-time (e.g. 2024-03-31T09:30:00Z)") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, Decimal):
        number = value
    else:
        try:
            number = Decimal(str(value).strip().replace(",", ""))
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def parse_float(value: Any) -> float | None:
    number = parse_decimal(value)
    return None if number is None else float(number)


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def parse_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean; use true or false")


def parse_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_list(value: Any) -> tuple[str, ...]:
    """A list of remote ids: an iterable, or a ``;``-separated string."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(filter(None, map(str.strip, value.split(";"))))
    return tuple(s for s in (str(item).strip() for item in value) if s)


def parse_int(value: Any) -> int | None:
    number = parse_decimal(value)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _required_bool(default: bool) -> Coercer:
    def coerce(value: Any) -> bool:
        parsed = parse_bool(value)
        return default if parsed is None else parsed

    return coerce


def _required_datetime(value: Any) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError("a date-time is required")
    return parsed


#: The coercer of a field by its annotation, unless the field names its own (:func:`coerced`).
#: A ``bool`` field with a default takes blanks as that default.
_BY_ANNOTATION: dict[str, Coercer] = {
    "str | None": parse_str,
    "datetime | None": parse_datetime,
    "Decimal | None": parse_decimal,
    "float | None": parse_float,
    "int | None": parse_int,
    "bool | None": parse_bool,
    "tuple[str, ...]": parse_list,
}
#: Annotations of fields kept as given: ``remote_id`` (checked on its own), ``source``
#: (filled in by the sync engine), ``extra`` and ``raw``.
_AS_GIVEN = {"str", "dict[str, Any]"}
_COERCE = "crmlink.coerce"


def coerced(coerce: Coercer, default: Any = None) -> Any:
    """A field whose values go through ``coerce`` rather than its annotation's coercer."""
    return field(default=default, metadata={_COERCE: coerce})


def vocabulary(name: str) -> Any:
    """A field holding a term of vocabulary ``name`` in its canonical spelling
    (:func:`crmlink.core.vocab.normalize`)."""
    return coerced(lambda value: vocab.normalize(name, value))


def _coercer(cls: type, f: dataclasses.Field[Any]) -> Coercer | None:
    if _COERCE in f.metadata:
        return f.metadata[_COERCE]  # type: ignore[no-any-return]
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if annotation == "bool":
        return _required_bool(f.default)  # type: ignore[arg-type]
    if annotation in _BY_ANNOTATION:
        return _BY_ANNOTATION[annotation]
    if annotation in _AS_GIVEN:
        return None
    raise TypeError(f"{cls.__name__}.{f.name}: no coercer for {annotation!r}; declare it with coerced()")


@dataclass(slots=True)
class Record:
    """Fields every canonical record has.

    ``remote_id`` is the record's id in its CRM; ``source`` is the name of the connection
    it came from and is filled in by the sync engine when the connector leaves it blank.
    """

    remote_id: str
    source: str = ""
    modified_at: datetime | None = None
    deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    entity: ClassVar[str] = "record"
    #: Each coerced field and its coercer, in declaration order (derived by :func:`_entity`).
    _coercers: ClassVar[dict[str, Coercer]] = {}

    def __post_init__(self) -> None:
        rid = self.remote_id
        if rid is None or not str(rid).strip():
            raise InvalidRecord(self.entity, None, "remote_id", "every record needs an id")
        self.remote_id = str(rid).strip()
        for name, coerce in self._coercers.items():
            try:
                setattr(self, name, coerce(getattr(self, name)))
            except (ValueError, TypeError) as exc:
                raise InvalidRecord(self.entity, self.remote_id, name, str(exc)) from None

    @classmethod
    def coercer(cls, name: str) -> Coercer:
        """What constructing a record does to the value of field ``name`` (the identity
        for ``remote_id``, ``source``, ``extra`` and ``raw``): a function that returns the
        canonical value or raises :class:`ValueError` or :class:`TypeError`. A reader of
        many rows can apply it to a whole column, and once to each distinct value."""
        if name not in cls.__dataclass_fields__:
            raise KeyError(f"{cls.__name__} has no field {name!r}")
        return cls._coercers.get(name, _as_given)

    @property
    def id(self) -> str:
        """The stable crmlink id: ``<source>:<remote_id>``."""
        return f"{self.source}:{self.remote_id}"

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _as_given(value: Any) -> Any:
    return value


def _entity(entity_name: str, /) -> Callable[[type[R]], type[R]]:
    """Name a record class's entity and derive its coercers from its fields."""

    def decorate(cls: type[R]) -> type[R]:
        cls.entity = entity_name
        coercers = ((f.name, _coercer(cls, f)) for f in dataclasses.fields(cls))
        cls._coercers = {name: coerce for name, coerce in coercers if coerce is not None}
        return cls

    return decorate


@_entity("account")
@dataclass(slots=True)
class Account(Record):
    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    parent_id: str | None = None
    tier: str | None = vocabulary("tier")
    #: Where the tier came from: ``"crm"`` (a field in the source) or ``"computed"``.
    tier_source: str | None = None
    annual_revenue: Decimal | None = None
    #: Year-over-year revenue growth as a fraction (0.2 is +20 %), when the CRM knows it.
    growth: float | None = None
    currency: str | None = None
    owner_id: str | None = None
    created_at: datetime | None = None


@_entity("user")
@dataclass(slots=True)
class User(Record):
    """One of *our* people: a salesperson, solution or delivery manager, or executive."""

    name: str | None = None
    email: str | None = None
    title: str | None = None
    seniority: str | None = vocabulary("seniority")
    team_role: str | None = vocabulary("team_role")
    active: bool = True


@_entity("contact")
@dataclass(slots=True)
class Contact(Record):
    """A person at the customer. ``department``, ``seniority`` and ``buying_role`` are
    canonical; when a connector only knows the native value it puts it in ``raw`` and the
    ``classify_contact`` hook derives the canonical one."""

    account_id: str | None = None
    name: str | None = None
    email: str | None = None
    title: str | None = None
    department: str | None = vocabulary("department")
    seniority: str | None = vocabulary("seniority")
    buying_role: str | None = vocabulary("buying_role")
    stance: int | None = coerced(vocab.normalize_stance)
    stance_assessed_at: datetime | None = None
    active: bool = True
    reports_to_id: str | None = None


def _interaction_kind(value: Any) -> str:
    kind = vocab.normalize("kind", value)
    if kind is None:
        raise ValueError("an interaction needs a kind: " + ", ".join(vocab.INTERACTION_KINDS))
    return kind


@_entity("interaction")
@dataclass(slots=True)
class Interaction(Record):
    """A meeting, call, email, visit, event, note or task between our people and theirs.

    ``direction`` is from our side: ``outbound`` we reached out, ``inbound`` they did or
    replied, ``two_way`` both spoke (a meeting or connected call), ``internal`` none of
    their people took part. ``None`` lets the analysis infer it from ``kind``.
    """

    kind: str = coerced(_interaction_kind, "note")
    direction: str | None = vocabulary("direction")
    method: str | None = vocabulary("method")
    occurred_at: datetime | None = coerced(_required_datetime)
    subject: str | None = None
    account_id: str | None = None
    opportunity_id: str | None = None
    user_ids: tuple[str, ...] = ()
    contact_ids: tuple[str, ...] = ()
    recipient_count: int | None = None
    duration_minutes: float | None = None
    campaign: str | None = None
    #: The source whose records ``account_id``, ``user_ids``, ``contact_ids`` and
    #: ``opportunity_id`` name, when it is not the interaction's own: a mailbox or a
    #: calendar links its messages and meetings to a CRM source's people. ``None``: its own.
    link_source: str | None = None


@_entity("opportunity")
@dataclass(slots=True)
class Opportunity(Record):
    """A deal. ``stage_id``/``stage_label`` are the CRM's own; ``ltc_stage`` is filled by
    the ``ltc_stage`` hook at analysis time unless the connector already knows it."""

    account_id: str | None = None
    name: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    pipeline: str | None = None
    stage_id: str | None = None
    stage_label: str | None = None
    probability: float | None = None
    is_closed: bool | None = None
    is_won: bool | None = None
    created_at: datetime | None = None
    close_date: datetime | None = None
    stage_entered_at: datetime | None = None
    owner_id: str | None = None
    ltc_stage: str | None = None


@_entity("opportunity_contact")
@dataclass(slots=True)
class OpportunityContact(Record):
    """A contact's role on one deal (Salesforce OpportunityContactRole, HubSpot labels)."""

    opportunity_id: str | None = None
    contact_id: str | None = None
    role: str | None = vocabulary("buying_role")
    is_primary: bool = False


@_entity("stage_change")
@dataclass(slots=True)
class StageChange(Record):
    """One entry of a deal's stage history."""

    opportunity_id: str | None = None
    stage_id: str | None = None
    stage_label: str | None = None
    entered_at: datetime | None = coerced(_required_datetime)


@_entity("stage")
@dataclass(slots=True)
class Stage(Record):
    """A pipeline stage as the CRM defines it; ``remote_id`` is the stage's id or API name."""

    pipeline: str | None = None
    label: str | None = None
    order: int | None = None
    probability: float | None = None
    is_closed: bool | None = None
    is_won: bool | None = None


@_entity("lead")
@dataclass(slots=True)
class Lead(Record):
    name: str | None = None
    company: str | None = None
    email: str | None = None
    status: str | None = None
    created_at: datetime | None = None
    owner_id: str | None = None
    converted_opportunity_id: str | None = None


@_entity("correspondent")
@dataclass(slots=True)
class Correspondent(Record):
    """A person at a known account who took part in one message or meeting but is not a
    contact in the CRM (an *unknown person*): the address, the display name, and the
    interaction it came with. ``account_id`` names an account of ``link_source``.

    One row per person and message (``remote_id`` is the interaction's remote id, ``|``,
    the address), so reading the same message twice counts it once.
    """

    #: The CRM source whose account this person is at
    link_source: str | None = None
    #: The account's remote id in ``link_source``
    account_id: str | None = None
    #: The person's email address, normalised (lower case)
    address: str | None = None
    #: The display name the message or invitation gave
    name: str | None = None
    #: The remote id of the interaction (message or meeting) of the same source
    interaction_id: str | None = None
    #: When the message was sent or the meeting began
    occurred_at: datetime | None = coerced(_required_datetime)
    #: True when this person wrote the message (or organised the meeting)
    sent: bool = False


#: Kinds of :class:`ExecutionRecord`, in the order a won deal goes through them.
EXECUTION_KINDS = ("contract", "order", "invoice", "payment")


def _execution_kind(value: Any) -> str:
    kind = str(value or "").strip().lower()
    if kind not in EXECUTION_KINDS:
        raise ValueError(f"{value!r} is not an execution kind; use one of: " + ", ".join(EXECUTION_KINDS))
    return kind


@_entity("execution")
@dataclass(slots=True)
class ExecutionRecord(Record):
    """A document of a won deal's execution: a contract, an order, an invoice or a payment
    (Salesforce Contract and Order, a billing system's invoices ...).

    ``opportunity_id`` ties it to the deal when the source knows; an order or invoice may
    instead name its ``contract_id``. ``active`` is the source's own "in force" flag (a
    Salesforce Contract or Order with StatusCode Activated), ``None`` when it has none.
    The LTC rules (docs/ltc.md) move a won deal on to ``deliver``, ``collect`` and
    ``closed`` from these records.
    """

    kind: str = coerced(_execution_kind, "contract")
    opportunity_id: str | None = None
    account_id: str | None = None
    contract_id: str | None = None
    number: str | None = None
    status: str | None = None
    active: bool | None = None
    amount: Decimal | None = None
    currency: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


def normalize_competitor(value: Any) -> str | None:
    """A competitor's name as one spelling: spaces collapsed, surrounding punctuation
    dropped (``"  Acme   Corp. "`` is ``"Acme Corp"``). Compare names case-insensitively."""
    text = " ".join(str(value or "").split()).strip(" .,;:-")
    return text or None


def _competitor_name(value: Any) -> str:
    name = normalize_competitor(value)
    if name is None:
        raise ValueError("a competitor needs a name")
    return name


@_entity("competitor")
@dataclass(slots=True)
class Competitor(Record):
    """A competitor on one deal (Salesforce OpportunityCompetitor, a value of the HubSpot deal
    property ``competitor_property`` names, a CSV row, or any connector's plugin). ``name`` is
    normalised (:func:`normalize_competitor`); the account is the deal's. ``remote_id`` is the
    CRM's id, or ``<opportunity_id>:<name>`` when it has none (HubSpot: the property's value)."""

    #: The deal's remote id
    opportunity_id: str | None = None
    #: The competitor's name, normalised
    name: str = coerced(_competitor_name, "")
    #: Their strengths on this deal, as the CRM records them
    strengths: str | None = None
    #: Their weaknesses on this deal
    weaknesses: str | None = None


#: Kinds of support case the satisfaction signal tells apart; others keep their own
#: spelling in lower case with ``_`` for spaces.
CASE_TYPES = ("complaint", "problem", "question", "request")


def _case_type(value: Any) -> str | None:
    text = "_".join(str(value or "").lower().split())
    return text or None


def _case_opened(value: Any) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError("a support case needs the date it was opened (opened_at)")
    return parsed


@_entity("support_case")
@dataclass(slots=True)
class SupportCase(Record):
    """A customer's support case or ticket (Salesforce Case, a HubSpot ticket, a CSV row, or any
    connector's plugin). It is open until ``closed_at`` (or while ``is_closed`` is false when
    the CRM gives no date); ``escalated`` is the CRM's escalation flag (HubSpot: the URGENT
    priority); ``type`` is one of
    :data:`CASE_TYPES` when it is one of those, its own word otherwise."""

    #: The customer's account (remote id)
    account_id: str | None = None
    #: The contact who raised it (remote id)
    contact_id: str | None = None
    #: The case's title
    subject: str | None = None
    #: When the customer raised it
    opened_at: datetime | None = coerced(_case_opened)
    #: When it was closed; ``None`` while open
    closed_at: datetime | None = None
    #: The CRM's closed flag, when it has one beside ``closed_at``
    is_closed: bool | None = None
    #: The CRM's own status (``New``, ``Escalated``, ``Closed`` ...)
    status: str | None = None
    #: The CRM's own priority (``High``, ``Medium`` ...)
    priority: str | None = None
    #: True when the CRM marks the case escalated
    escalated: bool = False
    #: complaint, problem, question, request, or the CRM's own word (lower case, ``_`` for spaces)
    type: str | None = coerced(_case_type)

    def open_at(self, when: datetime) -> bool:
        """True when the case had been opened and was not yet closed at ``when``."""
        if self.opened_at is None or self.opened_at > when:
            return False
        if self.closed_at is not None:
            return self.closed_at > when
        return not self.is_closed


ENTITIES: dict[str, type[Record]] = {
    cls.entity: cls
    for cls in (Account, User, Contact, Interaction, Opportunity, OpportunityContact,
                StageChange, Stage, Lead, ExecutionRecord, Correspondent, Competitor, SupportCase)
}


def entity_fields(cls: type[Record]) -> list[str]:
    """The entity-specific field names, in declaration order."""
    base = {f.name for f in dataclasses.fields(Record)}
    return [f.name for f in dataclasses.fields(cls) if f.name not in base]


def make(entity: str, data: dict[str, Any]) -> Record:
    """Build a record of ``entity`` from a mapping, rejecting unknown field names."""
    cls = ENTITIES[entity]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidRecord(entity, data.get("remote_id"), unknown[0], f"{entity} has no field {unknown[0]!r}")
    return cls(**data)


def chunked(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
