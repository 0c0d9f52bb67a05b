"""Identity resolution (crmlink.core.identity): addresses to users, contacts, accounts or
nobody, with aliases, public domains, overrides, never-merge pairs and ambiguity."""

from __future__ import annotations

import pytest

from crmlink import Account, Contact, IdentityResolver, IdentitySettings, User
from crmlink.core.analysis.config import load_config
from crmlink.core.errors import ConfigError
from crmlink.core.identity import canonical_address, normalize_address, normalize_domain

ACCOUNTS = [Account("A1", name="Pinnacle Bank", domain="https://www.pinnaclebank.com/"),
            Account("A2", name="Harbor Telecom"),
            Account("A3", name="Harbor Telecom Wholesale")]
CONTACTS = [Contact("C1", account_id="A1", email="Lena.Ng@PinnacleBank.com"),
            Contact("C2", account_id="A2", email="omar@harbor.example"),
            Contact("C3", account_id="A3", email="ines@harbor.example"),   # A2 and A3 share harbor.example
            Contact("C4", account_id="A2", email="john.smith@gmail.com"),
            Contact("C5", account_id="A2", email="shared@harbortel.example"),
            Contact("C6", account_id="A2", email="SHARED@harbortel.example"),
            Contact("C7", account_id="A1", email="old@pinnaclebank.com", deleted=True)]
USERS = [User("U1", email="alice@vendor.example"), User("U2", email="bob.lee@gmail.com")]


def resolver(**identity: object) -> IdentityResolver:
    settings = IdentitySettings.from_config({"identity": identity})
    data = {"account": ACCOUNTS, "contact": CONTACTS, "user": USERS}
    return IdentityResolver.from_records(lambda entity, source: data.get(entity, []), ["crm"], settings)


def kind(r: IdentityResolver, address: str) -> tuple[str, str | None, str | None]:
    match = r.directories[0].resolve(normalize_address(address) or "")
    return match.kind, match.remote_id, match.account_id


def test_addresses_and_domains_are_normalised() -> None:
    assert normalize_address(" <Lena.Ng@PinnacleBank.COM> ") == "lena.ng@pinnaclebank.com"
    assert normalize_address("Undisclosed recipients") is None
    assert normalize_address("no-domain@localhost") is None
    assert canonical_address("lena+deals@bank.com") == "lena@bank.com"
    assert canonical_address("j.o.h.n+x@googlemail.com") == "john@gmail.com"
    assert canonical_address("j.smith@bank.com") == "j.smith@bank.com"  # dots matter off Gmail
    assert normalize_domain("https://www.PinnacleBank.com/about") == "pinnaclebank.com"
    assert normalize_domain("not a domain") is None


def test_contacts_users_and_aliases() -> None:
    r = resolver()
    assert kind(r, "lena.ng@pinnaclebank.com") == ("contact", "C1", "A1")
    assert kind(r, "LENA.NG+rfp@pinnaclebank.com") == ("contact", "C1", "A1")  # plus-addressing
    assert kind(r, "johnsmith@gmail.com") == ("contact", "C4", "A2")          # Gmail ignores dots
    assert kind(r, "alice@vendor.example") == ("user", "U1", None)
    assert kind(r, "boblee@gmail.com") == ("user", "U2", None)
    assert kind(r, "carol@vendor.example") == ("internal", None, None)        # our users' domain
    assert kind(r, "carol@eu.vendor.example") == ("internal", None, None)     # and its subdomains


def test_domains_map_to_accounts_but_never_public_ones() -> None:
    r = resolver()
    assert kind(r, "new.person@pinnaclebank.com") == ("account", None, "A1")   # the account's domain
    assert kind(r, "someone@mail.pinnaclebank.com") == ("account", None, "A1")  # a subdomain
    assert kind(r, "old@pinnaclebank.com") == ("account", None, "A1")          # deleted contact: unknown person
    assert kind(r, "stranger@gmail.com") == ("public", None, None)             # C4's domain is public
    assert kind(r, "x@qq.com") == ("public", None, None)
    assert kind(r, "x@163.com") == ("public", None, None)
    assert kind(r, "x@elsewhere.example") == ("unknown", None, None)


def test_ambiguity_is_never_a_guess_and_is_counted() -> None:
    r = resolver()
    assert kind(r, "new@harbor.example") == ("ambiguous", None, None)  # A2 and A3 share the domain
    assert kind(r, "new@harbor.example")[0] == "ambiguous"
    # two contacts with one address at one account: the person is at that account, not a contact
    assert kind(r, "shared@harbortel.example") == ("account", None, "A2")
    found = r.ambiguities()
    assert found["harbor.example"] == (("crm:account:A2", "crm:account:A3"), 2)
    assert found["shared@harbortel.example"][0] == ("crm:contact:C5", "crm:contact:C6")


def test_overrides_and_never_merge() -> None:
    r = resolver(overrides={"harbor.example": "account:A3", "ceo@partner.example": "contact:C2",
                            "helpdesk@vendor.example": "nobody", "contractor@freelance.example": "internal",
                            "x@elsewhere.example": "othercrm:account:A1"},
                 never_merge=[["johnsmith@gmail.com", "john.smith@gmail.com"], ["pinnaclebank.com", "account:A1"]],
                 internal_domains=["vendor-labs.example"])
    assert kind(r, "new@harbor.example") == ("account", None, "A3")
    assert kind(r, "omar@harbor.example") == ("contact", "C2", "A2")  # a contact's own address wins
    assert kind(r, "ceo@partner.example") == ("contact", "C2", "A2")
    assert kind(r, "helpdesk@vendor.example") == ("unknown", None, None)
    assert kind(r, "contractor@freelance.example") == ("internal", None, None)
    assert kind(r, "x@elsewhere.example") == ("unknown", None, None)  # an override for another source
    assert kind(r, "johnsmith@gmail.com") == ("public", None, None)   # kept apart from C4
    assert kind(r, "john.smith@gmail.com") == ("contact", "C4", "A2")  # the exact address still matches
    assert kind(r, "new.person@pinnaclebank.com") == ("unknown", None, None)
    assert kind(r, "z@vendor-labs.example") == ("internal", None, None)


def test_the_config_file_table_is_checked(tmp_path) -> None:
    path = tmp_path / "crmlink.toml"
    path.write_text('[identity]\ninternal_domains = ["vendor.example"]\n'
                    '[identity.overrides]\n"pinnaclebank.com" = "account:A1"\n', encoding="utf-8")
    config = load_config(str(path))
    settings = IdentitySettings.from_config(config, ["labs.example"])
    assert settings.internal_domains == {"vendor.example", "labs.example"}
    assert settings.overrides["pinnaclebank.com"].remote_id == "A1"
    path.write_text('[identity]\ninternal_domain = ["x.example"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="identity.internal_domain"):
        load_config(str(path))
    with pytest.raises(ConfigError, match="not an override target"):
        IdentitySettings.from_config({"identity": {"overrides": {"a.example": "A1"}}})
    with pytest.raises(ConfigError, match="not a pair"):
        IdentitySettings.from_config({"identity": {"never_merge": [["a@b.example"]]}})
