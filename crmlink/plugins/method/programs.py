"""Recognising the five methods of "一五一工程" from an interaction's kind, subject or campaign."""

from __future__ import annotations

import re

#: method -> keywords (English matched case-insensitively, Chinese as substrings)
KEYWORDS: dict[str, tuple[str, ...]] = {
    "site_visit": ("site visit", "reference site", "reference visit", "showcase", "sample site",
                   "样板点", "参观样板", "样板间", "现场参观"),
    "exhibition": ("exhibition", "trade show", "tradeshow", "expo", "congress", "summit booth",
                   "展览", "展会", "博览会"),
    "tech_exchange": ("technical exchange", "tech exchange", "technical workshop", "tech workshop",
                      "technology seminar", "技术交流", "技术研讨", "技术沙龙"),
    "management_research": ("management research", "business research", "management consulting",
                            "operations research", "管理和经营研究", "经营研究", "管理研究", "管理咨询"),
    "company_visit": ("company visit", "hq visit", "headquarters visit", "campus visit",
                      "factory visit", "参观公司", "总部参观", "参观总部", "公司参观"),
}


def recognise(kind: str | None, subject: str | None, campaign: str | None) -> str | None:
    """The first method whose keyword appears in the kind, subject or campaign.

    The canonical kinds (meeting, visit ...) name no method on their own; a connector or
    plugin that keeps a native kind such as "Site Visit" gets it recognised here. An
    interaction's own ``method`` field, when set, wins before this is asked."""
    text = " ".join(filter(None, (kind, subject, campaign))).lower()
    if not _ANY.search(text):
        return None
    for method, pattern in _PATTERNS.items():
        if pattern.search(text):
            return method
    return None


#: each method's keywords as one expression: a search for any of them (a sync classifies
#: every distinct subject once, and a real export's subjects are nearly all distinct)
_PATTERNS = {method: re.compile("|".join(map(re.escape, words))) for method, words in KEYWORDS.items()}
#: any method's keyword: most texts have none, and one search tells so
_ANY = re.compile("|".join(pattern.pattern for pattern in _PATTERNS.values()))
