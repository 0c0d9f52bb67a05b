"""Tools for testing crmlink and its plugins: CRM API emulators, the sample generator, the
connector conformance kit (``from crmlink.testing import ConnectorContract``) and
``account_view`` (the audit's view of one account, built from records, for scoring
plugins' unit tests)."""

from __future__ import annotations

from typing import Any

#: public name -> module, imported on first use: the kit needs pytest (the crmlink[testing]
#: extra) and the views the analysis modules, neither of which ``import crmlink.testing``
#: should pay for
LAZY = {"ConnectorContract": "conformance", "SuiteConfig": "conformance", "account_view": "views"}


def __getattr__(name: str) -> Any:
    if name in LAZY:
        from importlib import import_module

        return getattr(import_module(f"crmlink.testing.{LAZY[name]}"), name)
    raise AttributeError(name)


__all__ = sorted(LAZY)
