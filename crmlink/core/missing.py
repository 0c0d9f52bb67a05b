"""Which ``pip install`` line brings back a plugin's missing dependency.

A plugin whose import fails with :class:`ModuleNotFoundError` for a module that one of its
distribution's declared requirements provides is not broken: the user installed it
without that requirement (an optional extra, or ``pip install --no-deps``). The host then
marks it ``missing`` and says nothing until a command needs it; ``crmlink plugins`` and
that command show the line computed here.
"""

from __future__ import annotations

import importlib.metadata as md
import re

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _provides(requirement: str, module: str) -> bool:
    """Whether the distribution ``requirement`` names is the one that installs ``module``
    (``hubspot`` from ``hubspot-api-client``, ``simple_salesforce`` from ``simple-salesforce``)."""
    name = _normal(requirement)
    top = _normal(module)
    installed = md.packages_distributions().get(module.split(".")[0], [])
    return (name == top or name.startswith(top + "-") or name in ("python-" + top, "py" + top)
            or name in {_normal(d) for d in installed})


def install_hint(exc: ModuleNotFoundError, distribution: str | None) -> str | None:
    """``pip install ...`` for the requirement of ``distribution`` that provides the module
    ``exc`` could not import, or ``None`` when none of its requirements does (then the
    plugin itself is at fault: it imports something it never declared)."""
    if not exc.name or not distribution:
        return None
    try:
        requires = md.distribution(distribution).requires or []
    except md.PackageNotFoundError:
        return None
    module = exc.name.split(".")[0]
    for line in requires:
        spec, _, marker = line.partition(";")
        found = _NAME.match(spec)
        if found is None or not _provides(found.group(1), module):
            continue
        extra = _EXTRA.search(marker)
        if extra:
            return f"pip install '{distribution}[{extra.group(1)}]'"
        return f"pip install '{spec.strip().replace(' ', '')}'"
    return None


__all__ = ["install_hint"]
