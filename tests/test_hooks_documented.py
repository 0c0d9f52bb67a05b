"""docs/hooks.md documents every hook with a ``## name(arg, ...)`` heading whose
arguments are exactly the spec's."""

from __future__ import annotations

import re
from pathlib import Path

import pluggy
import pytest

from crmlink.core import hookspecs

DOC = Path(__file__).resolve().parent.parent / "docs" / "hooks.md"
HEADING = re.compile(r"^##\s+`?(\w+)\((.*?)\)`?\s*$", re.MULTILINE)


def specs() -> dict[str, tuple[str, ...]]:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return {name: caller.spec.argnames for name, caller in vars(pm.hook).items()
            if isinstance(caller, pluggy.HookCaller) and caller.spec is not None}


def documented() -> dict[str, tuple[str, ...]]:
    text = DOC.read_text(encoding="utf-8")
    return {name: tuple(a.strip() for a in args.split(",") if a.strip())
            for name, args in HEADING.findall(text)}


@pytest.mark.parametrize("name", sorted(specs()))
def test_hook_is_documented(name):
    docs = documented()
    argnames = specs()[name]
    assert name in docs, f"docs/hooks.md has no heading '## {name}({', '.join(argnames)})'"
    assert docs[name] == argnames, (
        f"docs/hooks.md documents {name}({', '.join(docs[name])}) but the spec is "
        f"{name}({', '.join(argnames)})")


def test_no_documented_hook_is_gone():
    gone = sorted(set(documented()) - set(specs()))
    assert not gone, f"docs/hooks.md documents hooks that no longer exist: {gone}"
