"""The evaluation cycle's settings and their defaults (docs/method.md explains each)."""

from __future__ import annotations

from typing import Any

EVALUATION_DEFAULTS: dict[str, Any] = {
    "save": False,            # crmlink audit saves every audit, as if --save were given
    "move_points": 5.0,       # a score change smaller than this is not a move (diff, review)
    "step_points": 20.0,      # one step of tier, stage or level counts as this many points of move
    "reasons": 3,             # relationships named per moved account (the pairs that changed most)
}
