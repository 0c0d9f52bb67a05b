"""Tools for testing crmlink and its plugins: CRM API emulators, the sample generator and
the connector conformance kit (``from crmlink.testing import ConnectorContract``)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # imported lazily: the kit needs pytest, from the crmlink[testing] extra
    if name in ("ConnectorContract", "SuiteConfig"):
        from crmlink.testing import conformance

        return getattr(conformance, name)
    raise AttributeError(name)
