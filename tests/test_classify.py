from __future__ import annotations

import pytest

from crmlink import classify_title


@pytest.mark.parametrize("title, seniority, department", [
    ("总经理", "c_suite", "executive"),
    ("副总裁", "vp", "executive"),
    ("采购部部长", "director", "procurement"),
    ("财务总监", "director", "finance"),
    ("运维工程师", "entry", "operations"),
    ("网络规划处处长", "director", "technical"),
    ("Chief Technology Officer", "c_suite", "technical"),
    ("VP, Network Operations", "vp", "operations"),
    ("Head of Procurement", "head", "procurement"),
    ("Network O&M Engineer", "entry", "operations"),
    ("IT Manager", "manager", "it"),
    ("Senior Network Architect", "senior", "technical"),
])
def test_titles(title: str, seniority: str, department: str) -> None:
    found = classify_title(title)
    assert (found.seniority, found.department) == (seniority, department)


@pytest.mark.parametrize("label, role", [
    ("Economic Buyer", "economic_buyer"), ("Decision Maker", "decision_maker"),
    ("Technical Buyer", "technical_evaluator"), ("决策者", "decision_maker"), ("Business User", "user"),
])
def test_roles(label: str, role: str) -> None:
    assert classify_title(None, role=label).buying_role == role


def test_unknown_title_has_no_opinion() -> None:
    assert classify_title("Chief Happiness Wizard of Nothing").department is None
