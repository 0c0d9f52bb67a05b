"""Named sources' secrets in the operating system's keyring (``crmlink login NAME``).

Each secret setting of a named source is one keyring entry: service ``crmlink:<source>``,
user name the setting (``password``, ``access_token`` ...), through the ``keyring``
library, so it lands in the macOS Keychain, the Windows Credential Locker or the Secret
Service (GNOME Keyring, KWallet) of a Linux desktop.

Where the library finds no usable keyring (a headless server, a container), the secrets
go to :class:`PrivateFileKeyring` instead: one JSON file readable and writable only by
its owner (0600 in a 0700 folder), which crmlink refuses to read once others may read it.
It is an ordinary keyring backend, so ``PYTHON_KEYRING_BACKEND=
crmlink.core.keystore.PrivateFileKeyring`` selects it explicitly (tests do).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, PasswordDeleteError

from crmlink.core.errors import ConfigError

#: Overrides where :class:`PrivateFileKeyring` keeps its file.
FILE_ENV = "CRMLINK_SECRETS_FILE"


def service(source: str) -> str:
    """The keyring service of a named source."""
    return f"crmlink:{source}"


def secrets_file() -> Path:
    """``$CRMLINK_SECRETS_FILE``, else ``secrets.json`` in crmlink's user config folder
    (``$XDG_CONFIG_HOME/crmlink``, ``~/.config/crmlink``; ``%APPDATA%\\crmlink`` on Windows)."""
    if os.environ.get(FILE_ENV):
        return Path(os.environ[FILE_ENV]).expanduser()
    if os.name == "nt" and os.environ.get("APPDATA"):
        base = Path(os.environ["APPDATA"])
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "crmlink" / "secrets.json"


class PrivateFileKeyring(KeyringBackend):
    """A keyring in one JSON file that only its owner may read (0600)."""

    priority = 0.1  # below every real keyring; never picked by itself

    @property
    def path(self) -> Path:
        return secrets_file()

    def _load(self) -> dict[str, dict[str, str]]:
        path = self.path
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return {}
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringError(f"{path} may be read by other users (mode {stat.S_IMODE(mode):o}); "
                               f"crmlink will not use it until you run: chmod 600 {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError) as exc:
            raise KeyringError(f"cannot read {path}: {exc}") from None
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, dict[str, str]]) -> None:
        path = self.path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".secrets-", dir=path.parent)  # created 0600
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1, sort_keys=True)
            os.chmod(temp, 0o600)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data.setdefault(service, {})[username] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if username not in data.get(service, {}):
            raise PasswordDeleteError(f"no secret {username!r} for {service!r}")
        del data[service][username]
        if not data[service]:
            del data[service]
        self._save(data)


def backend() -> KeyringBackend:
    """The keyring the library chose, or the private file where it found none usable."""
    from keyring.backends import chainer, fail

    chosen = keyring.get_keyring()
    if isinstance(chosen, fail.Keyring) or (isinstance(chosen, chainer.ChainerBackend)
                                             and not chosen.backends):
        return PrivateFileKeyring()  # type: ignore[no-untyped-call]  # keyring's KeyringBackend.__init__ is unannotated
    return chosen


def describe(store: KeyringBackend) -> str:
    """Where secrets go, for messages: the keyring's name, or the file and its mode."""
    if isinstance(store, PrivateFileKeyring):
        return f"{store.path} (readable only by you)"
    return f"the {getattr(store, 'name', type(store).__name__)} keyring"


def load(source: str, names: Iterable[str]) -> dict[str, str]:
    """The stored values of these settings of ``source`` (those that have one)."""
    store = backend()
    found: dict[str, str] = {}
    try:
        for name in names:
            value = store.get_password(service(source), name)
            if value:
                found[name] = value
    except KeyringError as exc:
        raise ConfigError(f"cannot read the secrets of source {source!r} from {describe(store)}: {exc}") from None
    return found


def save(source: str, values: dict[str, Any]) -> KeyringBackend:
    """Store these settings of ``source``; returns the keyring used."""
    store = backend()
    try:
        for name, value in values.items():
            store.set_password(service(source), name, str(value))
    except KeyringError as exc:
        raise ConfigError(f"cannot store the secrets of source {source!r} in {describe(store)}: {exc}") from None
    return store


def forget(source: str, names: Iterable[str]) -> list[str]:
    """Delete these settings of ``source`` from the keyring; the names that were stored."""
    store = backend()
    gone = []
    for name in names:
        try:
            store.delete_password(service(source), name)
        except PasswordDeleteError:
            continue
        except KeyringError as exc:
            raise ConfigError(f"cannot delete a secret of {source!r} from {describe(store)}: {exc}") from None
        gone.append(name)
    return gone


__all__ = ["PrivateFileKeyring", "backend", "describe", "load", "save", "forget", "service",
           "secrets_file", "FILE_ENV"]
