"""Issue 2 acceptance: an installed plugin whose module raises ImportError does not break
the CLI; it is listed as broken, and strict mode turns it into an error."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from tests.plugin_venv import crmlink, install, make_venv


def write_broken_plugin(folder: Path) -> Path:
    package = folder / "crmlink-broken"
    (package / "crmlink_broken").mkdir(parents=True)
    (package / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "crmlink-broken"
        version = "0.0.1"

        [project.entry-points.crmlink]
        broken = "crmlink_broken"

        [tool.setuptools]
        packages = ["crmlink_broken"]
    """))
    (package / "crmlink_broken" / "__init__.py").write_text(
        "import crmlink_dependency_that_is_not_installed  # noqa: F401\n")
    return package


@pytest.mark.slow
def test_broken_plugin_does_not_break_the_cli(tmp_path):
    if sys.platform == "win32":
        pytest.skip("the test drives a POSIX virtual environment")
    python = make_venv(tmp_path / "venv")
    install(python, write_broken_plugin(tmp_path))

    helped = crmlink(python, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "sync" in helped.stdout and "plugins" in helped.stdout
    assert "skipped plugin 'broken'" in helped.stderr
    assert "ModuleNotFoundError" in helped.stderr

    listed = crmlink(python, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    broken = next(p for p in json.loads(listed.stdout) if p["name"] == "broken")
    assert broken["status"] == "broken"
    assert broken["distribution"] == "crmlink-broken"
    assert "crmlink_dependency_that_is_not_installed" in broken["error"]

    text = crmlink(python, "plugins")
    assert "broken" in text.stdout and "ModuleNotFoundError" in text.stdout

    version = crmlink(python, "--version")
    assert version.returncode == 0 and "plugin broken: crmlink-broken 0.0.1 [broken]" in version.stdout

    disabled = crmlink(python, "plugins", env={"CRMLINK_DISABLE_PLUGINS": "broken"})
    assert disabled.returncode == 0 and "skipped plugin" not in disabled.stderr

    strict = crmlink(python, "plugins", env={"CRMLINK_STRICT_PLUGINS": "1"})
    assert strict.returncode == 7, (strict.returncode, strict.stderr)
    assert "plugin 'broken' (crmlink-broken) failed to load" in strict.stderr
