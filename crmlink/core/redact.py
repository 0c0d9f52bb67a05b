"""Keeping secrets out of output: one :class:`Redactor` used wherever text leaves crmlink."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

MASK = "********"


class Redactor:
    """Replaces every known secret value (and its URL-encoded forms) with a mask.

    ``secrets`` is a list of values, or a function returning the current ones: a
    connector may learn a secret during the run (a session token from a login or the
    Salesforce CLI), and a redactor built on ``connector.secrets`` masks it as soon as
    the connector reports it.
    """

    def __init__(self, secrets: Iterable[str] | Callable[[], Iterable[str]] = ()) -> None:
        self._source = secrets if callable(secrets) else None
        self._known: tuple[str, ...] = ()
        self._masks: list[str] = []
        self._learn(() if callable(secrets) else tuple(secrets))

    def _learn(self, raw: tuple[str, ...]) -> None:
        from urllib.parse import quote, quote_plus

        values: set[str] = set()
        for secret in raw:
            if secret and len(secret) >= 4:
                values.update({secret, quote(secret, safe=""), quote_plus(secret)})
        self._known, self._masks = raw, sorted(values, key=len, reverse=True)

    @property
    def secrets(self) -> list[str]:
        """The values masked now, longest first."""
        if self._source is not None:
            raw = tuple(self._source())
            if raw != self._known:
                self._learn(raw)
        return self._masks

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
