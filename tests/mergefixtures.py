"""Two CRM sources made from the bundled sample: "sales" and "marketing" split it, with
ten accounts in both, a different id scheme in marketing (``M-`` ids, upper-case email
addresses, "Surname, Given" names and company names with a legal form), and interactions,
deals and contacts of the shared accounts divided between them. Together they hold
exactly the sample, so their merged audit must be the sample's own."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.conftest import SAMPLE

#: accounts only in sales, in both, and only in marketing
SALES_ONLY = {f"ACC-{n:03d}" for n in range(1, 21)}
SHARED = {f"ACC-{n:03d}" for n in range(21, 31)}
MARKETING_ONLY = {f"ACC-{n:03d}" for n in range(31, 51)}
FILES = ("accounts", "contacts", "users", "opportunities", "opportunity_contacts", "interactions")


def read(name: str, folder: Path = SAMPLE) -> list[dict[str, str]]:
    with open(folder / f"{name}.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write(folder: Path, name: str, rows: Iterable[Mapping[str, str]], columns: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)


def domain(account_id: str) -> str:
    return f"{account_id.lower()}.customer.example"


def combined(folder: Path) -> Path:
    """The sample with a domain for every account: the single source to compare with."""
    for name in FILES:
        rows = read(name)
        columns = list(rows[0])
        if name == "accounts":
            rows = [{**r, "domain": domain(r["id"])} for r in rows]
            columns.append("domain")
        write(folder, name, rows, columns)
    return folder


def mid(value: str) -> str:
    """Marketing's id for a sample id."""
    return f"M-{value}" if value else value


def _ids(value: str) -> str:
    return ";".join(mid(v) for v in value.split(";") if v)


def split(folder: Path) -> tuple[Path, Path]:
    """``folder/sales`` and ``folder/marketing``."""
    sales, marketing = folder / "sales", folder / "marketing"
    accounts = read("accounts")
    contacts = read("contacts")
    opps = read("opportunities")
    roles = read("opportunity_contacts")
    interactions = read("interactions")
    account_of_opp = {o["id"]: o["account_id"] for o in opps}

    def side(account: str, index: int) -> str:
        if account in SALES_ONLY:
            return "sales"
        if account in MARKETING_ONLY:
            return "marketing"
        return "sales" if index % 2 == 0 else "marketing"

    opp_side = {o["id"]: side(o["account_id"], i) for i, o in enumerate(opps)}
    row_side = [opp_side[r["opportunity_id"]] if r["opportunity_id"] else side(r["account_id"], i)
                for i, r in enumerate(interactions)]
    needed: dict[str, set[str]] = {"sales": set(), "marketing": set()}
    for r, where in zip(interactions, row_side, strict=True):
        needed[where].update(c for c in r["contact_ids"].split(";") if c)
    for r in roles:
        needed[opp_side[r["opportunity_id"]]].add(r["contact_id"])
    in_sales, in_marketing = set(), set()
    for i, c in enumerate(contacts):
        where = side(c["account_id"], i) if c["account_id"] not in SHARED else None
        if where == "sales" or (where is None and (i % 3 != 0 or c["id"] in needed["sales"])):
            in_sales.add(c["id"])
        if where == "marketing" or (where is None and (i % 3 != 1 or c["id"] in needed["marketing"])):
            in_marketing.add(c["id"])
        if where is None and c["id"] not in in_sales | in_marketing:
            in_sales.add(c["id"])
    both = in_sales & in_marketing

    def m_contact(c: dict[str, str]) -> dict[str, str]:
        out = {**c, "id": mid(c["id"]), "account_id": mid(c["account_id"]), "email": c["email"].upper()}
        if c["id"] in both:  # the same person, written another way, with fewer fields
            given, _, family = c["name"].partition(" ")
            out |= {"name": f"{family}, {given}" if family else given, "title": ""}
        return out

    users = read("users")
    write(sales, "users", users, list(users[0]))
    write(marketing, "users", [{**u, "id": mid(u["id"])} for u in users], list(users[0]))
    columns = [*accounts[0], "domain"]
    write(sales, "accounts", [{**a, "domain": domain(a["id"])} for a in accounts if a["id"] not in MARKETING_ONLY],
          columns)
    write(marketing, "accounts", [
        {**a, "id": mid(a["id"]), "owner_id": mid(a["owner_id"]), "parent_id": mid(a["parent_id"]),
         "domain": f"https://www.{domain(a['id'])}/",
         "name": a["name"] + (" Inc." if a["id"] in SHARED else ""),
         "tier": "" if a["id"] in SHARED else a["tier"]}
        for a in accounts if a["id"] not in SALES_ONLY], columns)
    write(sales, "contacts", [c for c in contacts if c["id"] in in_sales], list(contacts[0]))
    write(marketing, "contacts", [m_contact(c) for c in contacts if c["id"] in in_marketing], list(contacts[0]))
    write(sales, "opportunities", [o for o in opps if opp_side[o["id"]] == "sales"], list(opps[0]))
    write(marketing, "opportunities", [
        {**o, "id": mid(o["id"]), "account_id": mid(o["account_id"]), "owner_id": mid(o["owner_id"])}
        for o in opps if opp_side[o["id"]] == "marketing"], list(opps[0]))
    write(sales, "opportunity_contacts", [r for r in roles if opp_side[r["opportunity_id"]] == "sales"],
          list(roles[0]))
    write(marketing, "opportunity_contacts", [
        {**r, "opportunity_id": mid(r["opportunity_id"]), "contact_id": mid(r["contact_id"])}
        for r in roles if opp_side[r["opportunity_id"]] == "marketing"], list(roles[0]))
    write(sales, "interactions", [r for r, w in zip(interactions, row_side, strict=True) if w == "sales"],
          list(interactions[0]))
    write(marketing, "interactions", [
        {**r, "id": mid(r["id"]), "account_id": mid(r["account_id"]), "user_ids": _ids(r["user_ids"]),
         "contact_ids": _ids(r["contact_ids"]), "opportunity_id": mid(r["opportunity_id"])}
        for r, w in zip(interactions, row_side, strict=True) if w == "marketing"], list(interactions[0]))
    assert account_of_opp  # every deal has its account in the sample
    return sales, marketing
