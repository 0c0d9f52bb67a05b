"""Named sources: ``[sources.NAME]`` tables of the config file, and where their settings
come from.

A setting of a named source is taken from, in order: the command line, the environment
(``<CONNECTOR>_<SETTING>``, e.g. ``SALESFORCE_PASSWORD``), the config file, and, for a
secret setting none of those gave, the keyring (``crmlink login NAME`` put it there).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from crmlink.commands.common import config
from crmlink.core.connector import Connector, Setting, envvar_for
from crmlink.core.errors import ConfigError


def sources(config_file: str | None) -> dict[str, dict[str, Any]]:
    """The named sources of the config file, by name."""
    found = config(config_file).get("sources", {})
    return {name: dict(spec) for name, spec in found.items()}


def source_spec(config_file: str | None, name: str) -> tuple[str, dict[str, Any]]:
    """(connector name, settings from the file) of the named source ``name``."""
    spec = sources(config_file).get(name)
    if spec is None:
        where = config_file or os.environ.get("CRMLINK_CONFIG") or "./crmlink.toml"
        raise ConfigError(f"the config file ({where}) has no source named {name!r}; add a "
                          f"[sources.{name}] table with connector = \"salesforce\" (or another connector)")
    connector = spec.pop("connector", None)
    if connector is None:
        raise ConfigError(f"source {name!r} in the config file needs connector = \"...\"")
    return str(connector), spec


def secret_settings(cls: type[Connector]) -> list[Setting]:
    return [s for s in cls.settings if s.secret]


def with_keyring(source: str, cls: type[Connector], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` plus the secrets of ``source`` stored in the keyring for the secret
    settings that ``values`` leaves empty."""
    wanted = [s.name for s in secret_settings(cls) if values.get(s.name) in (None, "")]
    if not wanted:
        return values
    from crmlink.core import keystore  # the keyring library is imported only when needed

    return {**values, **keystore.load(source, wanted)}


def from_environment(cls: type[Connector], spec: Mapping[str, Any],
                     environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings the environment gives for those ``spec`` (the config file) leaves out,
    converted as the command line would (``sync`` gets them through its options)."""
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for setting in cls.settings:
        variable = setting.envvar or envvar_for(cls.name, setting.name)
        if setting.name in spec or not environ.get(variable):
            continue
        text = environ[variable]
        try:
            if setting.is_flag:
                found[setting.name] = text.strip().lower() in ("1", "true", "yes", "on")
            else:
                found[setting.name] = setting.type(text)
        except (TypeError, ValueError):
            raise ConfigError(f"{variable}={text!r} is not a valid {setting.type.__name__}") from None
    return found


__all__ = ["sources", "source_spec", "secret_settings", "with_keyring", "from_environment"]
