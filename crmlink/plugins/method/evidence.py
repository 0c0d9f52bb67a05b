"""The data-gap finding: when a layer cannot be scored for want of evidence, the account
gets one ``DATA_*`` finding naming what is missing and what to record or connect,
instead of an alarm per layer. Its severity is that of a data gap (``low`` for a
strategic account or one with open deals, ``info`` otherwise), never a relationship
emergency."""

from __future__ import annotations

from crmlink import AccountView, Finding
from crmlink.plugins.method.scores import LAYERS, missing_evidence
from crmlink.plugins.method.select import strategic
from crmlink.plugins.method.words import count, join

CONNECT = "or connect mail and calendar so crmlink reads who met and wrote to whom"


def _problems(view: AccountView) -> list[str]:
    """One clause per gap, in the order the coverage lists them."""
    cov, name = view.coverage, view.account.name or view.account.remote_id
    days = f"{cov.window_days:g} days"
    clauses = {
        "no_contacts": f"no contact is recorded for {name}",
        "no_classified_contacts": f"none of its {count(cov.contacts, 'contact')} has a title, level, "
                                  "department or buying role",
        "no_activity": (f"no activity with any of its {count(cov.contacts, 'contact')} is recorded in {days}, "
                        "so the relationship is either dormant or unrecorded") if cov.contacts
                       else f"no activity names a contact in {days}",
        "no_linked_activity": f"none of its {count(cov.interactions, 'activity', 'activities')} in {days} "
                              "names a contact",
        "no_user_activity": f"none of its {count(cov.interactions, 'activity', 'activities')} in {days} "
                            "names one of our people",
        "no_paired_activity": "no activity names both a contact and one of our people",
    }
    return [clauses[gap] for gap in cov.gaps]


def _code_and_action(view: AccountView) -> tuple[str, str]:
    gaps, name = view.coverage.gaps, view.account.name or view.account.remote_id
    if "no_contacts" in gaps:
        return "DATA_NO_CONTACTS", (f"Record the people we deal with at {name} as contacts, with their "
                                    f"titles; log meetings and calls against them, {CONNECT}.")
    if "no_activity" in gaps:
        return "DATA_NO_ACTIVITY", (f"Ask the {name} account team whether the relationship is dormant; if "
                                    f"not, log meetings and calls against the contacts, {CONNECT}.")
    if not view.coverage.has_relationship_evidence:
        return "DATA_UNLINKED_ACTIVITY", ("Link each activity to the contacts and the colleagues who took "
                                          f"part (attendees, 'Name' and 'Assigned to'), {CONNECT}.")
    return "DATA_UNCLASSIFIED_CONTACTS", (f"Record the titles (or departments, levels and buying roles) of "
                                          f"the contacts at {name}, so decision makers and coverage can be "
                                          "judged.")


def data_gap(view: AccountView) -> Finding | None:
    """The one finding for an account with layers the method cannot score."""
    missing = missing_evidence(view)
    if not missing:
        return None
    code, action = _code_and_action(view)
    layers = [layer for layer in LAYERS if layer in missing]
    name = view.account.name or view.account.remote_id
    judged = "its relationships" if len(layers) == len(LAYERS) else f"its {join(layers)} relationships"
    problems = _problems(view) or [missing[layers[0]]]
    cov = view.coverage
    return Finding(
        code, "low" if strategic(view) or cov.open_opportunities else "info",
        f"The CRM holds too little to judge {judged} with {name}: {'; '.join(problems)}.",
        {"layers_without_evidence": {layer: missing[layer] for layer in layers},
         "gaps": list(cov.gaps), "contacts": cov.contacts, "classified_contacts": cov.classified,
         "interactions": cov.interactions, "interactions_paired": cov.paired,
         "open_opportunities": cov.open_opportunities, "window_days": cov.window_days},
        action)
