from __future__ import annotations

from datetime import timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmlink import Account, Contact, Interaction, InvalidRecord, Opportunity
from crmlink.core import vocab
from crmlink.core.host import _PROBE_TIME, _probe
from crmlink.core.model import make, parse_str
from crmlink.core.rows import RowBatch, trusted


def test_coerces_strings_to_canonical_types() -> None:
    contact = Contact(remote_id=" c1 ", stance="coach", seniority="VP", modified_at="2024-01-01T08:00:00+0800")
    assert contact.remote_id == "c1"
    assert contact.stance == 3
    assert contact.seniority == "vp"
    assert contact.modified_at.tzinfo == timezone.utc and contact.modified_at.hour == 0


def test_amounts_are_decimals() -> None:
    assert Opportunity(remote_id="o", amount="1,250.50").amount == Decimal("1250.50")


@pytest.mark.parametrize("entity, fields, field", [
    (Interaction, {"kind": "call", "occurred_at": "2024-13-01"}, "occurred_at"),
    (Interaction, {"kind": "carrier pigeon", "occurred_at": "2024-01-01"}, "kind"),
    (Opportunity, {"amount": "lots"}, "amount"),
    (Account, {"tier": "Z"}, "tier"),
    (Contact, {"stance": "7"}, "stance"),
])
def test_invalid_values_name_record_and_field(entity: type, fields: dict, field: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        entity(remote_id="r42", **fields)
    assert caught.value.field == field
    assert "r42" in str(caught.value) and field in str(caught.value)


def test_a_record_needs_an_id() -> None:
    with pytest.raises(InvalidRecord, match="remote_id"):
        Account(remote_id="  ")


def test_make_rejects_unknown_fields() -> None:
    with pytest.raises(InvalidRecord, match="no field 'colour'"):
        make("account", {"remote_id": "a", "colour": "red"})


def test_raw_and_extra_are_kept() -> None:
    contact = Contact(remote_id="c", raw={"department": "网络运维部"}, extra={"Fax": "1"})
    assert contact.raw["department"] == "网络运维部" and contact.extra == {"Fax": "1"}


def test_the_first_bad_field_in_declaration_order_is_reported() -> None:
    with pytest.raises(InvalidRecord) as caught:
        Interaction(remote_id="i1", kind="call", direction="sideways", occurred_at="2024-13-01")
    assert caught.value.field == "direction"


def test_a_blank_bool_with_a_default_takes_the_default() -> None:
    assert Contact(remote_id="c", active="").active is True
    assert Account(remote_id="a", deleted="").deleted is False
    assert Opportunity(remote_id="o", is_won="").is_won is None  # no default: unknown


def test_a_field_type_without_a_coercer_is_refused_where_it_is_declared() -> None:
    from dataclasses import dataclass

    from crmlink.core.model import Record, _entity

    with pytest.raises(TypeError, match=r"Odd.tags: no coercer for 'set\[str\]'"):
        @_entity("odd")
        @dataclass(slots=True)
        class Odd(Record):
            tags: set[str] = frozenset()  # type: ignore[assignment]


@given(st.sampled_from(sorted(vocab.INTERACTION_KINDS)), st.none() | st.text(max_size=12),
       st.none() | st.text(max_size=12))
def test_the_hooks_probe_is_the_record_the_constructor_makes(kind: str, subject: str | None,
                                                             campaign: str | None) -> None:
    """The classify hook's probe, made from values as stored (canonical) without
    validating them again, equals the validated record; its ``extra`` and ``raw`` are its own."""
    subject, campaign = parse_str(subject), parse_str(campaign)
    probe = _probe(kind, subject, campaign)
    assert probe == Interaction(remote_id="probe", kind=kind, occurred_at=_PROBE_TIME, subject=subject,
                                campaign=campaign)
    probe.extra["seen"] = True
    assert _probe(kind, subject, campaign).extra == {}


def test_records_made_without_validation_keep_every_field() -> None:
    made = Interaction(remote_id="i1", kind="meeting", occurred_at="2026-01-02T03:04:05Z", user_ids="u1;u2")
    again = trusted(Interaction, RowBatch.of(Interaction, [made]).rows[0])
    assert again == made and again is not made
    with pytest.raises(ValueError):  # a row one value short is refused, not half-filled
        trusted(Interaction, RowBatch.of(Interaction, [made]).rows[0][:-1])
