"""Shared by the fault suites: fast retries, the one-error-line check, store dumps."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from click.testing import Result

from crmlink.core.store import Store

#: Tiny waits, so a suite of retried faults runs in seconds (the production policy waits
#: a second and more). Set through the environment, as a user would.
FAST_RETRIES = {"CRMLINK_RETRY_INITIAL": "0.01", "CRMLINK_RETRY_MAXIMUM": "0.05",
                "CRMLINK_RETRY_ATTEMPTS": "6", "CRMLINK_RETRY_TOTAL": "60"}


def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST_RETRIES.items():
        monkeypatch.setenv(name, value)


def assert_one_error_line(result: Result, code: int, *words: str) -> str:
    """The run failed with ``code`` and exactly one ``Error:`` line holding ``words``."""
    assert result.exit_code == code, (result.exit_code, result.output)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    assert result.stderr.rstrip().endswith(errors[0]), result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def stored(db: str, entity: str) -> dict[str, bool]:
    """remote_id -> deleted for every row of ``entity``, asserting no id appears twice."""
    rows = list(Store(db).records(entity, include_deleted=True))
    ids = [r.remote_id for r in rows]
    assert len(ids) == len(set(ids)), f"duplicate {entity} rows"
    return {r.remote_id: r.deleted for r in rows}


def retries_shown(stderr: str) -> Iterable[str]:
    return [line for line in stderr.splitlines() if "; retry " in line]
