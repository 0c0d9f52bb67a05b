"""A seeded generator of realistic CRM exports in the canonical CSV format.

The invented vendor sells network and IT solutions to enterprises and telecom
operators. ``generate(folder)`` writes the bundled sample (about 50 accounts); larger
sizes are for benchmarks (``--accounts 10000 --interactions 1000000 --contacts 100000``;
about 10 s for the largest). The same seed
always writes the same files. Rows are written as they are made, so memory stays flat.

The first accounts carry *planted situations* the audit must find (see ``PLANTED``);
every other account is generated healthy for its tier.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

END = datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc)
YEARS = 2

#: remote id -> (name, tier, situation). Situations are what the audit must report.
PLANTED: dict[str, tuple[str, str, str]] = {
    "ACC-001": ("Harbor City Telecom", "S", "healthy"),
    "ACC-002": ("东海移动 Eastern Sea Mobile", "S", "healthy"),
    "ACC-003": ("Westlake Power Grid", "A", "personalized"),
    "ACC-004": ("Pinnacle Bank", "A", "cto_only"),
    "ACC-005": ("Northern Rail Systems", "S", "cooling"),
    "ACC-006": ("Sunrise Logistics", "A", "owner_left"),
    "ACC-007": ("Golden Bay Manufacturing", "S", "opponent"),
    "ACC-008": ("Meridian Health Group", "A", "healthy"),
}

USERS = [  # id, name, title, team role, seniority, active
    ("U01", "Alice Chen", "Account Director", "AR", "director", True),
    ("U02", "Ben Ortiz", "Key Account Manager", "AR", "manager", True),
    ("U03", "Chloe Wang 王晓", "客户经理", "AR", "manager", True),
    ("U04", "Dmitri Volkov", "Account Manager", "AR", "manager", True),
    ("U05", "Lena Fischer", "Senior Account Manager", "AR", "senior", True),
    ("U06", "Farid Haddad", "Account Manager", "AR", "manager", False),  # left the company
    ("U07", "Grace Liu 刘倩", "解决方案经理", "SR", "manager", True),
    ("U08", "Hiro Tanaka", "Solution Architect", "SR", "senior", True),
    ("U09", "Isabel Costa", "Solution Manager", "SR", "manager", True),
    ("U10", "Jonas Berg", "Pre-sales Engineer", "SR", "entry", True),
    ("U11", "Kavya Rao", "Delivery Manager", "FR", "manager", True),
    ("U12", "Liam Murphy", "Project Delivery Lead", "FR", "manager", True),
    ("U13", "Mei Zhang 张梅", "交付经理", "FR", "manager", True),
    ("U14", "Noah Kim", "Service Delivery Manager", "FR", "manager", True),
    ("U15", "Olivia Brown", "Chief Executive Officer", "executive", "c_suite", True),
    ("U16", "Peter Sun 孙鹏", "副总裁", "executive", "vp", True),
    ("U17", "Quinn Adams", "VP Sales", "executive", "vp", True),
    ("U18", "Rosa Silva", "Sales Operations Analyst", "other", "entry", True),
    ("U19", "Sam Patel", "Inside Sales Rep", "other", "entry", True),
    ("U20", "Tara Nguyen", "Account Manager", "AR", "manager", True),
]

# (title EN, title ZH, department hint for the reader, buying role, stance-able)
TITLES = [
    ("Chief Executive Officer", "总经理", "economic_buyer"),
    ("Chief Technology Officer", "首席技术官", "decision_maker"),
    ("VP, Network Operations", "副总经理", "decision_maker"),
    ("Chief Financial Officer", "财务总监", "approver"),
    ("Head of Procurement", "采购部部长", "procurement"),
    ("Procurement Manager", "采购经理", "procurement"),
    ("Director of Engineering", "工程建设部总监", "technical_evaluator"),
    ("Network Planning Manager", "网络规划处处长", "technical_evaluator"),
    ("Senior Network Architect", "高级网络架构师", "influencer"),
    ("IT Manager", "信息中心经理", "technical_evaluator"),
    ("O&M Manager", "运维部经理", "user"),
    ("Network O&M Engineer", "运维工程师", "user"),
    ("Construction Engineer", "建设工程师", "user"),
    ("Finance Manager", "财务经理", "approver"),
    ("Business Development Manager", "市场部经理", "influencer"),
    ("Legal Counsel", "法务专员", "other"),
    ("Executive Assistant", "总经理秘书", "gatekeeper"),
    ("Transmission Engineer", "传输工程师", "user"),
]

FIRST = ["Ana", "Bo", "Carlos", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jia", "Kofi", "Lara",
         "Marco", "Nina", "Omar", "Priya", "Raj", "Sara", "Tom", "Uma", "Victor", "Wen", "Xavier", "Yuki", "Zoe"]
LAST = ["Ahmed", "Baker", "Chen", "Diaz", "Evans", "Fang", "Garcia", "Huang", "Ito", "Jones", "Khan", "Li",
        "Moreno", "Novak", "Okafor", "Park", "Quist", "Rossi", "Smith", "Tan", "Ueda", "Vega", "Wu", "Xu", "Yang", "Zhou"]
ZH_NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周杰", "吴婷", "徐涛", "孙丽", "马超", "朱琳", "胡斌"]
INDUSTRIES = ["Telecommunications", "Utilities", "Banking", "Transportation", "Logistics", "Manufacturing",
              "Healthcare", "Government", "Energy", "Retail"]
COMPANY_A = ["Atlas", "Blue River", "Cedar", "Delta", "Evergreen", "Falcon", "Granite", "Horizon", "Ironwood",
             "Jade", "Keystone", "Lakeside", "Maple", "Nova", "Orion", "Pacific", "Quantum", "Redwood", "Summit",
             "Terra", "Union", "Vertex", "Willow", "Zenith"]
COMPANY_B = ["Telecom", "Networks", "Mobile", "Energy", "Bank", "Logistics", "Rail", "Health", "Industries",
             "Broadband", "Utilities", "Holdings"]
SUBJECTS = {
    "meeting": ["Quarterly business review", "Roadmap discussion", "Requirements workshop", "项目周例会",
                "Architecture review", "Commercial terms"],
    "call": ["Follow-up call", "Status call", "电话沟通", "Pricing questions", "Escalation call"],
    "email": ["Re: proposal", "Meeting notes", "Re: delivery plan", "技术方案", "Invoice query"],
    "visit": ["On-site visit", "拜访客户", "Customer site survey"],
    "event": ["Customer dinner", "Industry forum"],
    "note": ["Call notes", "Account plan update"],
    "task": ["Send datasheet", "Prepare quote"],
}
#: Raised whenever the export made for the same arguments changes (the benchmark makes
#: its exports again when it differs from the one its files were made by): 2, the
#: multi-party profile's subjects, one a thread.
VERSION = 2
#: The multi-party profile's interactions in a row of an account that share one thread
#: number in their subjects: a thread's messages and meetings share a subject, and the
#: classify hook sees about as many distinct subjects as a real export gives it.
THREAD = 8
PROGRAMS = [("site_visit", "Reference site visit to Harbor City NOC"), ("exhibition", "MWC exhibition booth tour"),
            ("tech_exchange", "技术交流: 5G core evolution"), ("management_research", "Management research workshop"),
            ("company_visit", "Company visit to our HQ")]
SF_STAGES = ["Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
             "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost"]
HS_STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
             "contractsent", "closedwon", "closedlost"]
RATE = {"S": 12.0, "A": 5.5, "B": 1.0, "C": 0.3}  # interactions a week, by tier
CONTACTS = {"S": 18, "A": 11, "B": 6, "C": 3}
TEAM = {"S": (2, 2, 1, 1), "A": (1, 1, 1, 1), "B": (1, 1, 0, 0), "C": (1, 0, 0, 0)}  # AR, SR, FR, exec


@dataclass
class Plan:
    """One account, its people and how they interact."""

    id: str
    name: str
    tier: str
    situation: str
    owner: str
    team: list[str]
    contacts: list[tuple[str, str, str]] = field(default_factory=list)  # id, role, title
    chinese: bool = False


class Writer:
    """Opens one CSV per file and writes rows as they come."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        #: file name -> (open file, its CSV writer's ``writerow``)
        self.files: dict[str, tuple[TextIO, Callable[[Iterable[object]], object]]] = {}

    def open(self, name: str, header: list[str]) -> None:
        handle = open(self.folder / f"{name}.csv", "w", encoding="utf-8", newline="")
        writer = csv.writer(handle)
        writer.writerow(header)
        self.files[name] = (handle, writer.writerow)

    def row(self, name: str, values: list[object]) -> None:
        self.files[name][1](["" if v is None else v for v in values])

    def close(self) -> None:
        for handle, _ in self.files.values():
            handle.close()


#: The interaction profiles :func:`generate` knows.
PROFILES = ("default", "multiparty")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Generator:
    def __init__(self, accounts: int = 50, interactions: int | None = None, seed: int = 7,
                 contacts: int | None = None, profile: str = "default") -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
        self.rng = random.Random(seed)
        self.n_accounts = accounts
        self.target_interactions = interactions
        self.target_contacts = contacts
        #: "multiparty": up to three of ours and three of theirs on an interaction
        self.multiparty = profile == "multiparty"
        self.plans: list[Plan] = []

    # -- accounts and people ---------------------------------------------------------------

    def _tier(self, index: int) -> str:
        ratio = index / max(1, self.n_accounts)
        return "S" if ratio < 0.1 else "A" if ratio < 0.3 else "B" if ratio < 0.6 else "C"

    def _company(self, index: int) -> str:
        return f"{self.rng.choice(COMPANY_A)} {self.rng.choice(COMPANY_B)} {index:03d}"

    def plan_accounts(self) -> None:
        ars = [u[0] for u in USERS if u[3] == "AR" and u[5]]
        by_role = {r: [u[0] for u in USERS if u[3] == r and u[5]] for r in ("SR", "FR", "executive")}
        for index in range(1, self.n_accounts + 1):
            rid = f"ACC-{index:03d}" if self.n_accounts < 1000 else f"ACC-{index:06d}"
            name, tier, situation = PLANTED.get(rid, (self._company(index), self._tier(index), "healthy"))
            n_ar, n_sr, n_fr, n_ex = TEAM[tier]
            team = self.rng.sample(ars, n_ar) + self.rng.sample(by_role["SR"], n_sr) \
                + self.rng.sample(by_role["FR"], n_fr) + self.rng.sample(by_role["executive"], n_ex)
            owner = team[0]
            if situation == "owner_left":
                owner = "U06"
                team = ["U06"] + team[1:2]
            if situation == "personalized":
                owner = "U05"
                team = ["U05"] + team[1:]
            self.plans.append(Plan(rid, name, tier, situation, owner, team, chinese="移动" in name or index % 4 == 2))

    def write_accounts(self, out: Writer) -> None:
        out.open("accounts", ["id", "name", "parent_id", "industry", "tier", "annual_revenue", "currency",
                              "owner_id", "created_at"])
        for plan in self.plans:
            revenue = {"S": 5e9, "A": 4e8, "B": 5e7, "C": 5e6}[plan.tier] * self.rng.uniform(0.5, 1.5)
            tier = "" if plan.tier == "C" and self.rng.random() < 0.5 else plan.tier  # half the C's computed
            out.row("accounts", [plan.id, plan.name, "", self.rng.choice(INDUSTRIES), tier, f"{revenue:.2f}",
                                 "USD", plan.owner, _iso(END - timedelta(days=900 + self.rng.randint(0, 900)))])

    def write_users(self, out: Writer) -> None:
        out.open("users", ["id", "name", "email", "title", "team_role", "active"])
        for uid, name, title, role, _seniority, active in USERS:
            email = name.split()[0].lower() + "@vendor.example"
            out.row("users", [uid, name, email, title, role, "true" if active else "false"])

    def _person(self, chinese: bool) -> str:
        if chinese:
            return self.rng.choice(ZH_NAMES)
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"

    def write_contacts(self, out: Writer) -> None:
        out.open("contacts", ["id", "account_id", "name", "email", "title", "department", "seniority",
                              "buying_role", "stance", "active"])
        serial = 0
        default_total = sum(CONTACTS[p.tier] for p in self.plans)
        scale = self.target_contacts / default_total if self.target_contacts else 1.0
        for plan in self.plans:
            count = max(1, round(CONTACTS[plan.tier] * scale))
            titles = TITLES[:count] if count <= len(TITLES) else TITLES + self.rng.choices(TITLES, k=count - len(TITLES))
            for en, zh, role in titles:
                serial += 1
                cid = f"CON-{serial:06d}"
                stance = self._stance(plan, role)
                title = zh if plan.chinese and self.rng.random() < 0.7 else en
                known_role = role if self.rng.random() < 0.6 or role in ("economic_buyer", "decision_maker") else ""
                plan.contacts.append((cid, role, en))
                out.row("contacts", [cid, plan.id, self._person(plan.chinese), f"{cid.lower()}@customer.example",
                                     title, "", "", known_role, stance, "true"])

    def _stance(self, plan: Plan, role: str) -> str:
        if plan.situation == "opponent" and role == "decision_maker":
            return "-2"
        if role in ("economic_buyer", "decision_maker", "technical_evaluator"):
            return str(self.rng.choice([0, 1, 1, 2, 3]))
        return ""

    # -- interactions ----------------------------------------------------------------------

    def _engaged_contacts(self, plan: Plan) -> list[tuple[str, str, str]]:
        if plan.situation == "cto_only":
            return [c for c in plan.contacts if c[2] == "Chief Technology Officer"]
        if plan.situation == "opponent":
            return [c for c in plan.contacts if c[1] != "decision_maker"]
        return plan.contacts

    def _users_for(self, plan: Plan, when: datetime) -> list[str]:
        if plan.situation == "personalized":
            return ["U05"] if self.rng.random() < 0.95 else [self.rng.choice(plan.team)]
        if plan.situation == "owner_left" and when < END - timedelta(days=200):
            return ["U06"]
        if plan.situation == "owner_left":
            return [self.rng.choice(plan.team[1:] or ["U19"])]
        if plan.situation == "cto_only":
            return [self.rng.choice(plan.team[:2])]
        if self.multiparty:
            return self.rng.sample(plan.team, min(self._party(), len(plan.team)))
        users = [self.rng.choice(plan.team)]
        if self.rng.random() < 0.35 and len(plan.team) > 1:
            users.append(self.rng.choice([u for u in plan.team if u != users[0]]))
        return users

    def _pick_contacts(self, plan: Plan, users: list[str], engaged: list[tuple[str, str, str]]) -> list[str]:
        roles = {u[0]: u[3] for u in USERS}
        role = roles.get(users[0])
        pool = engaged
        if role == "SR":
            pool = [c for c in engaged if c[1] in ("technical_evaluator", "influencer", "decision_maker")] or engaged
        elif role == "FR":
            pool = [c for c in engaged if c[1] in ("user", "technical_evaluator")] or engaged
        elif role == "executive":
            pool = [c for c in engaged if c[1] in ("economic_buyer", "decision_maker")] or engaged
        if len(users) > 1 and self.rng.random() < 0.5:  # two of us: meet a decision maker together
            pool = [c for c in engaged if c[1] in ("economic_buyer", "decision_maker")] or pool
        count = self._party() if self.multiparty else (1 if self.rng.random() < 0.75 else 2)
        return [c[0] for c in self.rng.sample(pool, min(count, len(pool)))]

    def _party(self) -> int:
        """People on one side of a multi-party interaction: 1, 2 or 3 (1.89 on average; with
        the accounts' smaller teams and pools, about 3.5 pairs of people an interaction at
        100k interactions)."""
        return self.rng.choices((1, 2, 3), weights=(38, 35, 27))[0]

    def _times(self, plan: Plan, total: int) -> list[datetime]:
        start = END - timedelta(days=365 * YEARS)
        span = (END - start).total_seconds()
        stop = END - timedelta(days=75) if plan.situation == "cooling" else END
        times = []
        for _ in range(total):
            moment = start + timedelta(seconds=self.rng.random() * span)
            if moment > stop:
                continue
            times.append(moment)
        return sorted(times)

    def _count(self, plan: Plan) -> int:
        if self.target_interactions is not None:
            share = RATE[plan.tier] / self._rate_total
            return max(1, round(self.target_interactions * share))
        return round(RATE[plan.tier] * 52 * YEARS * self.rng.uniform(0.9, 1.1))

    def write_interactions(self, out: Writer) -> None:
        out.open("interactions", ["id", "account_id", "occurred_at", "kind", "direction", "method", "subject",
                                  "user_ids", "contact_ids", "opportunity_id", "duration_minutes"])
        self._rate_total = sum(RATE[p.tier] for p in self.plans)
        serial = 0
        kinds = ["meeting"] * 25 + ["call"] * 25 + ["email"] * 35 + ["visit"] * 8 + ["event"] * 3 + ["note"] * 4
        for plan in self.plans:
            engaged = self._engaged_contacts(plan)
            opps = self.open_opps.get(plan.id, [])
            for when in self._times(plan, self._count(plan)):
                serial += 1
                users = self._users_for(plan, when)
                kind = self.rng.choice(kinds)
                direction = self._direction(kind)
                contacts = self._pick_contacts(plan, users, engaged)
                opp = self.rng.choice(opps) if opps and self.rng.random() < 0.3 else ""
                subject = self.rng.choice(SUBJECTS[kind])
                if self.multiparty:  # as in real exports, nearly every thread's subject is its own
                    subject = f"{subject} ({plan.id} #{serial // THREAD})"
                out.row("interactions", [f"INT-{serial:07d}", plan.id, _iso(when), kind, direction, "",
                                         subject, ";".join(users), ";".join(contacts), opp,
                                         self.rng.choice([30, 45, 60, 90]) if kind in ("meeting", "visit") else ""])
            for program, named in self._programs(plan):
                serial += 1
                contacts = [c[0] for c in engaged[:3]]
                out.row("interactions", [f"INT-{serial:07d}", plan.id, _iso(program), "event", "two_way", "",
                                         named[1], ";".join(plan.team[:2]), ";".join(contacts), "", 240])
        self.n_interactions = serial

    def _programs(self, plan: Plan) -> Iterator[tuple[datetime, tuple[str, str]]]:
        if plan.tier != "S" or plan.situation in ("cooling",):
            return
        for offset in (40, 150, 300):
            yield END - timedelta(days=offset + self.rng.randint(0, 20)), self.rng.choice(PROGRAMS)

    def _direction(self, kind: str) -> str:
        if kind == "email":
            return self.rng.choice(["outbound", "outbound", "inbound", "inbound", "two_way"])
        if kind == "note":
            return "outbound"
        return "two_way"

    # -- deals and leads --------------------------------------------------------------------

    def write_opportunities(self, out: Writer) -> None:
        out.open("opportunities", ["id", "account_id", "name", "amount", "currency", "stage", "pipeline",
                                   "probability", "is_closed", "is_won", "created_at", "close_date",
                                   "stage_entered_at", "owner_id"])
        out.open("opportunity_contacts", ["opportunity_id", "contact_id", "role", "is_primary"])
        self.open_opps: dict[str, list[str]] = {}
        serial = 0
        for plan in self.plans:
            for _ in range({"S": 3, "A": 2, "B": 1, "C": 0}[plan.tier] if self.n_accounts < 1000 else 1):
                serial += 1
                self._opportunity(out, plan, f"OPP-{serial:06d}")
        if self.n_accounts >= 8:  # non-standard stages on a healthy account
            for stage, probability in (("Technical Validation", "40"), ("Assigned dynamically", "")):
                serial += 1
                self._opportunity(out, self.plans[0], f"OPP-{serial:06d}", stage, probability)

    def _opportunity(self, out: Writer, plan: Plan, oid: str, stage: str | None = None,
                     probability: str = "") -> None:
        if stage is None:
            stage = self._stage(plan)
        closed = stage in ("Closed Won", "Closed Lost", "closedwon", "closedlost")
        won = stage in ("Closed Won", "closedwon")
        created = END - timedelta(days=self.rng.randint(60, 500))
        entered = created + timedelta(days=self.rng.randint(5, 50))
        if not closed:
            entered = END - timedelta(days=self.rng.randint(3, 40))
        if plan.situation == "opponent" and stage == "Negotiation/Review":
            entered = END - timedelta(days=120)  # stalled
        pipeline = "default" if stage in HS_STAGES else "Standard"
        amount = {"S": 2_000_000, "A": 500_000, "B": 120_000, "C": 30_000}[plan.tier] * self.rng.uniform(0.4, 1.6)
        out.row("opportunities", [oid, plan.id, f"{plan.name.split()[0]} {self.rng.choice(['5G Core', 'SD-WAN', 'Data Center', 'Optical Backbone', 'Managed Services'])}",
                                  f"{amount:.2f}", "USD", stage, pipeline, probability,
                                  "true" if closed else "false", "true" if won else "false", _iso(created),
                                  _iso(END + timedelta(days=self.rng.randint(-200, 200))), _iso(min(entered, END)), plan.owner])
        if not closed:
            self.open_opps.setdefault(plan.id, []).append(oid)
        for contact, role, _ in plan.contacts[:3]:
            if plan.situation == "opponent" and role == "decision_maker":
                continue
            out.row("opportunity_contacts", [oid, contact, role.replace("_", " ").title(), "true" if role == "economic_buyer" else "false"])

    def _stage(self, plan: Plan) -> str:
        if plan.situation in ("cto_only", "opponent"):
            return "Negotiation/Review"
        if plan.tier == "B" and self.rng.random() < 0.3:
            return self.rng.choice(HS_STAGES)
        return self.rng.choice(SF_STAGES)

    def write_leads(self, out: Writer) -> None:
        out.open("leads", ["id", "name", "company", "email", "status", "created_at", "owner_id",
                           "converted_opportunity_id"])
        for index in range(1, max(2, self.n_accounts // 2) + 1):
            status = self.rng.choice(["Open - Not Contacted", "Working - Contacted", "Closed - Not Converted",
                                      "Closed - Converted"])
            converted = f"OPP-{index:06d}" if status == "Closed - Converted" else ""
            out.row("leads", [f"LEAD-{index:05d}", self._person(False), self._company(1000 + index),
                              f"lead{index}@prospect.example", status,
                              _iso(END - timedelta(days=self.rng.randint(1, 400))), "U19", converted])

    def write(self, folder: Path) -> None:
        out = Writer(folder)
        try:
            self.plan_accounts()
            self.write_accounts(out)
            self.write_users(out)
            self.write_contacts(out)
            self.write_opportunities(out)
            self.write_interactions(out)
            self.write_leads(out)
        finally:
            out.close()


def generate(folder: str | Path, accounts: int = 50, interactions: int | None = None, seed: int = 7,
             contacts: int | None = None, profile: str = "default") -> Generator:
    """Write a sample export to ``folder`` and return the generator (its plans are the truth).

    ``interactions`` and ``contacts`` are approximate totals, spread over the accounts in
    proportion to each tier's default rate and team size. ``profile``: ``default`` (mostly
    one of ours and one of theirs an interaction, about 1.7 pairs of people) or
    ``multiparty`` (one to three on each side, about 3.5 pairs, as meetings and mail
    threads have; each thread's subject its own, :data:`THREAD`).
    """
    generator = Generator(accounts, interactions, seed, contacts, profile)
    generator.write(Path(folder))
    return generator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a seeded sample CRM export in crmlink's CSV format.")
    parser.add_argument("folder")
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--interactions", type=int, default=None, help="total interactions (default: by tier)")
    parser.add_argument("--contacts", type=int, default=None, help="total contacts (default: by tier)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--people", choices=PROFILES, default="default",
                        help="people per interaction: default (about 1.7 pairs) or multiparty "
                             "(up to three on each side, about 3.5 pairs)")
    args = parser.parse_args(argv)
    result = generate(args.folder, args.accounts, args.interactions, args.seed, args.contacts, args.people)
    print(f"wrote {args.folder}: {len(result.plans)} accounts, {result.n_interactions} interactions")


if __name__ == "__main__":
    main()
