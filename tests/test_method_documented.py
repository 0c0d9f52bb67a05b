"""docs/method.md is complete and accurate: every finding code the method plugin can
emit is in its findings table, its default config is exactly the code's defaults, and
every setting is explained in the prose."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from crmlink.core.analysis.config import DEFAULTS
from tests.test_method_boundaries import emitted_codes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOC = (Path(__file__).resolve().parent.parent / "docs" / "method.md").read_text(encoding="utf-8")
PROSE, _, DEFAULTS_SECTION = DOC.partition("## The default config")


def test_every_emitted_code_is_in_the_findings_table() -> None:
    rows = set(re.findall(r"^\| ([A-Z_]+) \|", DOC, flags=re.M))
    assert emitted_codes() and not emitted_codes() - rows, sorted(emitted_codes() - rows)


def test_the_documented_default_config_is_the_code_s() -> None:
    block = re.search(r"```toml\n(.*?)```", DEFAULTS_SECTION, flags=re.S)
    assert block, "docs/method.md has no default config block"
    assert tomllib.loads(block.group(1)) == DEFAULTS


def test_every_method_setting_is_explained() -> None:
    skip = {"retry"}   # the sync engine's, listed in the default config only
    missing = [f"{table}.{key}" for table, values in DEFAULTS.items() if table not in skip
               for key in values if f"{table}.{key}" not in PROSE and f"`{table}.*`" not in PROSE]
    assert not missing, missing
