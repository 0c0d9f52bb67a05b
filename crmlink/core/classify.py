"""Title rules: seniority, department and buying role from English and Chinese titles.

The rules are data (ordered keyword tables), applied by :func:`classify`. The first
matching rule in each table wins, so more specific keywords come first (副总裁 before
总裁, "vice president" before "president"). Keywords match case-insensitively as
substrings for Chinese and as whole words for English.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from crmlink.core import vocab


@dataclass(frozen=True)
class Classification:
    """What ``classify_contact`` returns; ``None`` means "no opinion"."""

    seniority: str | None = None
    department: str | None = None
    buying_role: str | None = None


SENIORITY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("intern", ("intern", "trainee", "实习")),
    ("vp", ("vice president", "vp", "svp", "evp", "avp", "副总裁", "副总经理", "副总", "副院长",
            "副行长", "副局长")),
    ("owner", ("owner", "founder", "co-founder", "chairman", "chairwoman", "board member",
               "董事长", "董事", "创始人")),
    ("c_suite", ("chief", "ceo", "cto", "cfo", "coo", "cio", "cmo", "cpo", "ciso", "president",
                 "general manager", "managing director", "总裁", "总经理", "首席", "院长", "行长",
                 "局长", "总工程师", "总工")),
    ("head", ("head of", "head", "负责人", "部门总经理")),
    ("director", ("director", "部长", "总监", "主任", "处长")),
    ("manager", ("manager", "supervisor", "team lead", "lead", "副部长", "副处长", "科长", "经理",
                 "主管", "组长")),
    ("senior", ("senior", "principal", "staff", "expert", "architect", "specialist", "高级", "资深",
                "专家", "架构师", "主任工程师")),
    ("entry", ("engineer", "analyst", "associate", "assistant", "coordinator", "officer",
               "secretary", "technician", "buyer", "accountant", "工程师", "专员", "助理", "秘书",
               "技术员", "会计", "采购员", "出纳")),
)

DEPARTMENT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("procurement", ("procurement", "purchasing", "sourcing", "tender", "buyer", "supply chain",
                     "采购", "招标", "物资", "供应链")),
    ("finance", ("finance", "financial", "cfo", "accounting", "accountant", "treasury", "controller",
                 "accounts payable", "财务", "计财", "会计", "出纳", "审计")),
    ("legal", ("legal", "counsel", "compliance", "法务", "合规", "法律")),
    ("hr", ("human resources", "hr", "talent", "people", "人力", "人事")),
    ("operations", ("operations", "o&m", "maintenance", "noc", "network operations", "coo",
                    "运维", "维护", "网管", "运营", "运行")),
    ("engineering", ("construction", "engineering", "deployment", "rollout", "build", "建设", "工程",
                     "基建")),
    ("it", ("information technology", "it", "cio", "information center", "信息中心", "信息化",
            "信息技术", "IT部")),
    ("technical", ("technical", "technology", "architecture", "architect", "r&d", "research",
                   "cto", "planning", "solution", "技术", "研发", "规划", "总工", "架构", "网络")),
    ("business", ("marketing", "market", "business", "product", "sales", "commercial", "市场",
                  "业务", "产品", "销售", "政企")),
    ("executive", ("ceo", "president", "chairman", "general manager", "managing director",
                   "board", "executive office", "总裁", "总经理", "董事", "总经办", "院长", "行长")),
)

BUYING_ROLE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("economic_buyer", ("economic buyer", "economic decision maker", "budget holder", "拍板")),
    ("decision_maker", ("decision maker", "executive sponsor", "决策者", "决策人")),
    ("approver", ("approver", "legal & compliance", "审批人", "审批")),
    ("technical_evaluator", ("technical buyer", "technical evaluator", "evaluator", "选型者",
                             "技术评估", "评估者")),
    ("procurement", ("procurement", "purchasing", "采购者")),
    ("user", ("business user", "end user", "user", "使用者")),
    ("influencer", ("influencer", "champion", "影响者")),
    ("gatekeeper", ("gatekeeper", "把关")),
    ("blocker", ("blocker", "阻碍")),
    ("other", ("other", "其他")),
)

_ASCII = re.compile(r"^[\x00-\x7f]+$")
_PATTERNS: dict[str, re.Pattern[str]] = {}


def _matches(text: str, keyword: str) -> bool:
    if not _ASCII.match(keyword):
        return keyword.lower() in text
    pattern = _PATTERNS.get(keyword)
    if pattern is None:
        pattern = _PATTERNS[keyword] = re.compile(r"(?<![a-z])" + re.escape(keyword.lower()) + r"(?![a-z])")
    return pattern.search(text) is not None


@functools.lru_cache(maxsize=65536)
def match(rules: tuple[tuple[str, tuple[str, ...]], ...], text: str | None) -> str | None:
    """The canonical value of the first rule with a keyword found in ``text``.

    Cached: an export repeats the same few thousand titles across its contacts, and each
    miss tries every keyword of every rule."""
    if not text:
        return None
    lowered = text.lower()
    for value, keywords in rules:
        if any(_matches(lowered, k) for k in keywords):
            return value
    return None


def _canonical_or_match(vocabulary: str, value: str | None,
                        rules: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    if not value:
        return None
    try:
        return vocab.normalize(vocabulary, value)
    except ValueError:
        return match(rules, value)


def classify(title: str | None, department: str | None = None, role: str | None = None) -> Classification:
    """Classify from a title, a native department name and a native buying-role label."""
    return Classification(
        seniority=match(SENIORITY_RULES, title),
        department=_canonical_or_match("department", department, DEPARTMENT_RULES)
        or match(DEPARTMENT_RULES, title),
        buying_role=_canonical_or_match("buying_role", role, BUYING_ROLE_RULES),
    )
