"""docs/records.md: every canonical record's fields, types, whether they are required, and
the allowed values of each vocabulary, read from the model and its coercers."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crmlink.docs.introspect import cell, comments

#: What the model does not say next to a field, by (entity, field). The test fails on a
#: note for a field that is gone or now has a comment in the model (move the note there).
NOTES = {
    ("record", "remote_id"): "The record's id in its CRM; with `source` it identifies the record.",
    ("record", "source"): "The name of the connection it came from; the sync engine fills it "
                          "in (the connector's name, or `--source NAME`).",
    ("record", "modified_at"): "When the CRM last changed it: the incremental cursor of "
                               "sorted streams.",
    ("record", "deleted"): "Deleted or archived at the source; kept in the store, left out "
                           "of the audit.",
    ("record", "extra"): "Native fields with no canonical home (JSON-serialisable values).",
    ("record", "raw"): "Native spellings of values that were canonicalised or need "
                       "classifying (`raw[\"department\"] = \"Netzbetrieb\"`).",
    ("account", "parent_id"): "The parent account's remote id.",
    ("account", "owner_id"): "The owning user's remote id.",
    ("account", "annual_revenue"): "In `currency`; with `growth` it gives the computed tier "
                                   "([method.md](method.md)).",
    ("user", "team_role"): "AR (account), SR (solution), FR (fulfilment): the iron triangle.",
    ("contact", "account_id"): "The account's remote id.",
    ("contact", "stance"): "Towards us: -2 opponent, -1 not approving, 0 neutral, 1 supporter, "
                           "2 strong supporter, 3 coach.",
    ("contact", "active"): "Still at the customer and in the role.",
    ("contact", "reports_to_id"): "The remote id of the contact they report to.",
    ("interaction", "kind"): "Weighs the interaction ([method.md](method.md)).",
    ("interaction", "direction"): "Blank: inferred from `kind` (meetings, visits, events and "
                                  "calls two-way; the rest outbound).",
    ("interaction", "method"): "One of the five engagement methods; blank: asked of the "
                               "`classify_interaction` hook.",
    ("interaction", "account_id"): "Blank: the account of its contacts.",
    ("interaction", "user_ids"): "Our people who took part (user remote ids).",
    ("interaction", "contact_ids"): "Their people who took part (contact remote ids).",
    ("interaction", "recipient_count"): "People addressed (an email's recipients); blank: the "
                                        "number of `contact_ids`.",
    ("opportunity", "probability"): "A fraction from 0 to 1 (0.4 is 40 %); connectors divide "
                                    "a CRM's percentages by 100.",
    ("opportunity", "stage_id"): "The CRM's stage id or API name (`crmlink.Stage.remote_id`).",
    ("opportunity", "stage_entered_at"): "When the deal entered its current stage.",
    ("opportunity", "ltc_stage"): "Blank: chosen by the `ltc_stage` hooks at audit time "
                                  "([ltc.md](ltc.md)).",
    ("opportunity_contact", "role"): "The contact's buying role on this deal.",
    ("stage", "probability"): "A fraction from 0 to 1, as for opportunities.",
    ("stage", "order"): "Position in its pipeline.",
    ("lead", "converted_opportunity_id"): "The deal it became, if any.",
}

INTRO = """\
# Canonical records

Generated from the code by `python -m crmlink.docs`; do not edit by hand.

Connectors map their CRM's objects to these records (`crmlink.Account`, ...), and the
audit reads them back from the store. Building one validates and coerces every field:
text is stripped (blank becomes `None`), ISO 8601 text becomes an aware UTC date-time (a
naive one is taken as UTC, a date as its midnight), numbers become `Decimal` or `float`,
vocabulary values their canonical spelling (any case, or an alias below). A value that
cannot be coerced raises `crmlink.InvalidRecord` naming the entity, the record's
`remote_id` and the field. References (`account_id`, `owner_id`, `user_ids` ...) hold
the *remote* ids of records of the same source.

**Required** means a blank value is an error; a required field that has a default takes
it when left out. Every field not required may be left blank.
"""


@dataclass(frozen=True)
class FieldInfo:
    """One field as the reference shows it."""

    name: str
    kind: str
    required: bool
    default: str
    values: str
    note: str


def page() -> str:
    from crmlink.core.model import ENTITIES, Record

    parts = [INTRO, section(Record, "Fields of every record", base=True)]
    for cls in ENTITIES.values():
        parts.append(section(cls, f"{cls.__name__} (`{cls.entity}`)"))
    parts.append(vocabularies())
    return "\n".join(parts)


def section(cls: type, title: str, base: bool = False) -> str:
    doc = _markdown(inspect.cleandoc(cls.__doc__ or "")) if cls.__doc__ and not _generated(cls) else ""
    rows = [f"| `{f.name}` | {f.kind} | {'yes' if f.required else ''} | {f.default} | "
            f"{cell(' '.join(x for x in (f.values, f.note) if x))} |" for f in field_infos(cls, base)]
    table = ("| Field | Type | Required | Default | Values and notes |\n"
             "| --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")
    return "\n".join(x for x in (f"## {title}\n", doc + "\n" if doc else "", table) if x)


def field_infos(cls: type, base: bool = False) -> list[FieldInfo]:
    """The fields ``cls`` declares (every record's own fields only with ``base``)."""
    from crmlink.core.model import Record

    inherited = {f.name for f in dataclasses.fields(Record)}
    notes = {**_comments_of(cls), **{k[1]: v for k, v in NOTES.items() if k[0] == _entity(cls)}}
    coercers: dict[str, Callable[[Any], Any]] = getattr(cls, "_coercers", {})
    found = []
    for f in dataclasses.fields(cls):
        if (f.name in inherited) != base:
            continue
        coerce = coercers.get(f.name)
        found.append(FieldInfo(f.name, _kind(str(f.type)), f.name == "remote_id" or _rejects_blank(coerce),
                               _default(f), allowed(coerce), notes.get(f.name, "")))
    return found


def _entity(cls: type) -> str:
    return str(getattr(cls, "entity", "record"))


def _comments_of(cls: type) -> dict[str, str]:
    return {name: _markdown(text) for name, text in comments(cls).items()}


def _generated(cls: type) -> bool:
    """A dataclass without a docstring gets its signature as ``__doc__``."""
    return bool(re.match(rf"{cls.__name__}\(", cls.__doc__ or ""))


def _markdown(text: str) -> str:
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")


KINDS = {
    "str": "text", "str | None": "text", "datetime | None": "date-time",
    "Decimal | None": "decimal number", "float | None": "number", "int | None": "whole number",
    "bool": "true/false", "bool | None": "true/false", "tuple[str, ...]": "list of ids",
    "dict[str, Any]": "mapping",
}


def _kind(annotation: str) -> str:
    return KINDS.get(annotation, f"`{annotation}`")


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default_factory is not dataclasses.MISSING:
        return f"`{f.default_factory()!r}`"
    if f.default is dataclasses.MISSING or f.default is None:
        return ""
    return '`""`' if f.default == "" else f"`{f.default}`"


def _rejects_blank(coerce: Callable[[Any], Any] | None) -> bool:
    if coerce is None:
        return False
    try:
        coerce(None)
    except (ValueError, TypeError):
        return True
    return False


def allowed(coerce: Callable[[Any], Any] | None) -> str:
    """The values a vocabulary field accepts, read from the error its coercer gives for a
    value no vocabulary has, named after its vocabulary when it is one."""
    from crmlink.core import vocab

    if coerce is None:
        return ""
    if coerce is vocab.normalize_stance:
        return "One of " + ", ".join(str(s) for s in vocab.STANCES) + " ([stance](#stance))."
    try:
        coerce("\u2400 no such value")
    except (ValueError, TypeError) as exc:
        match = re.search(r"use one of: (.+)$", str(exc))
        if match:
            values = tuple(v.strip() for v in match.group(1).split(","))
            for name, terms in vocab.VOCABULARIES.items():
                if tuple(map(str, terms)) == values:
                    return f"One of the [{name}](#{name}) vocabulary."
            return "One of " + ", ".join(f"`{v}`" for v in values) + "."
    return ""


def vocabularies() -> str:
    from crmlink.core import vocab

    aliases: dict[str, dict[str, str]] = getattr(vocab, "_ALIASES", {})
    parts = ["## Vocabularies\n",
             "Each accepts its values in any case, the aliases listed, and blank or `unknown` "
             "(stored as `None`).\n"]
    for name, terms in vocab.VOCABULARIES.items():
        parts.append(f"### {name}\n\nValues: " + ", ".join(f"`{t}`" for t in terms) + ".\n")
        spelled = aliases.get(name, {})
        if spelled:
            parts.append("Aliases: " + ", ".join(f"`{a}` → {f'`{v}`' if v else 'blank'}" for a, v in spelled.items())
                         + ".\n")
    names = aliases.get("stance", {})
    parts.append("### stance\n\nValues: " + ", ".join(str(s) for s in vocab.STANCES)
                 + " (a whole number, or its text).\n")
    if names:
        parts.append("Aliases: " + ", ".join(f"`{a}` → {v}" for a, v in names.items()) + ".\n")
    return "\n".join(parts)
