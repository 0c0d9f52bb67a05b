"""Keeping secrets out of output: one :class:`Redactor` used wherever text leaves crmlink."""

from __future__ import annotations

import logging
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


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in every record a handler emits.

    The message is formatted once (with its arguments) and redacted; an exception's text
    and traceback are redacted too, so ``-vv`` debug logs of the HTTP libraries cannot leak
    a token that ended up in a URL or an error message.
    """

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redact.secrets:
            return True
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
