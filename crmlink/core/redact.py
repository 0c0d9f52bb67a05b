"""Keeping secrets out of output: one :class:`Redactor` used wherever text leaves crmlink."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "********"


class Redactor:
    """Replaces every known secret value (and its URL-encoded form) with a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        from urllib.parse import quote, quote_plus

        values: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                values.update({secret, quote(secret, safe=""), quote_plus(secret)})
        self.secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text
