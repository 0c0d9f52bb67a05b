"""``import crmlink`` (the plugin author's API) leaves the store's and the CLI's libraries
unloaded: a plugin that only maps records or scores accounts never pays for them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "click", "jinja2", "tenacity")


def test_the_public_api_loads_no_store_or_cli_library() -> None:
    code = ("import sys, crmlink; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []

