"""The strategic stages and relationship levels, lowest first (docs/method.md)."""

from __future__ import annotations

#: How far a customer relationship has deepened: perceptual recognition (visits,
#: exhibitions, a first order), a community of interest (services that raise the
#: customer's profit, repeat business), deep strategic cooperation (regular executive
#: meetings, joint development).
STAGES = ("perceptual_recognition", "community_of_interest", "deep_strategic_cooperation")
#: The quality of the relationship itself.
LEVELS = ("ordinary_cooperation", "friendship", "strategic_partnership")
TIERS = ("S", "A", "B", "C")


def rank(value: str | None, order: tuple[str, ...]) -> int:
    """1.. along ``order`` (higher is deeper), 0 for ``None``. Tiers: S is highest."""
    if value is None or value not in order:
        return 0
    return len(order) - order.index(value) if order is TIERS else order.index(value) + 1


def label(value: str | None) -> str:
    """``community_of_interest`` -> ``community of interest``; ``–`` for none."""
    return "–" if value is None else value.replace("_", " ")


def parse(value: object, order: tuple[str, ...]) -> str | None:
    """A stage or level as a CRM field or a file spells it (``Community of interest``,
    ``community-of-interest``, ``2``), or ``None`` when blank. Raises ``ValueError``
    naming the accepted values otherwise."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if text.isdigit() and 1 <= int(text) <= len(order):
        return order[int(text) - 1]
    key = text.lower().replace("-", "_").replace(" ", "_")
    if key in order:
        return key
    raise ValueError(f"{text!r} is not one of: {', '.join(order)} (or 1..{len(order)})")
