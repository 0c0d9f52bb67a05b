from __future__ import annotations

from datetime import timezone
from decimal import Decimal

import pytest

from crmlink import Account, Contact, Interaction, InvalidRecord, Opportunity
from crmlink.core.model import make


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
