"""Finding the messages under a path: mbox files, ``.eml`` files and Maildirs (with
Maildir++ subfolders such as ``.Sent``), through the standard library's :mod:`mailbox`.

Each message is handed over as its header block (:func:`header_block`) with
where it is, one at a time: a mailbox of any size is read in flat memory, and bodies
are never read. Folders are read Inbox-like first and Sent-like last, so that our
answers come after the messages they answer (see docs/connectors/mail.md).
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from crmlink import ConfigError, InvalidRecord, MalformedMessage


def header_block(lines: Iterable[bytes], limit: int = 1_000_000) -> bytes:
    """The header block from a binary file positioned at a message's start (up to the
    first empty line; at most ``limit`` bytes, so a broken message cannot eat memory)."""
    block = bytearray()
    for line in lines:
        if line in (b"\n", b"\r\n"):
            break
        block += line
        if len(block) > limit:
            raise MalformedMessage("headers", f"the header block is longer than {limit:,} bytes; "
                                   "this is not a mail message")
    return bytes(block)


@dataclass(frozen=True)
class Item:
    """One message's header block, or why it could not be read, and where it is."""

    location: str
    headers: bytes = b""
    error: MalformedMessage | None = None


def messages(path: Path) -> Iterator[Item]:
    """Every message under ``path`` (a file or a folder), mailbox by mailbox."""
    if not path.exists():
        raise ConfigError(f"{path} does not exist; give an mbox file, an .eml file, a Maildir "
                          "or a folder holding them")
    if path.is_file():
        yield from _file(path)
        return
    if _is_maildir(path):
        yield from _maildir(mailbox.Maildir(path, factory=None, create=False), str(path))
        return
    for child in sorted(path.iterdir(), key=_order):
        if child.name.startswith(".") and not _is_maildir(child):
            continue
        if child.is_dir():
            yield from messages(child)
        elif child.suffix.lower() == ".eml" or _is_mbox(child):
            yield from _file(child)


def _order(path: Path) -> tuple[bool, str]:
    """Sent folders last, then by name."""
    return ("sent" in path.name.lower(), path.name)


def _is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def _is_mbox(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(5) == b"From "
    except OSError:
        return False


def _file(path: Path) -> Iterator[Item]:
    if path.suffix.lower() == ".eml" or not _is_mbox(path):
        yield _eml(path)
        return
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield _read(box.get_file(key), f"{path}: message {number}")
    finally:
        box.close()


def _eml(path: Path) -> Item:
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InvalidRecord("message", None, "file", f"cannot be read: {exc.strerror}").at(str(path)) from None
    return _read(handle, str(path))


def _maildir(box: mailbox.Maildir, where: str) -> Iterator[Item]:
    for key in sorted(box.iterkeys()):
        yield _read(box.get_file(key), f"{where}: message {key}")
    for name in sorted(box.list_folders(), key=lambda n: ("sent" in n.lower(), n)):
        yield from _maildir(box.get_folder(name), f"{where}/.{name}")


def _read(handle: IO[bytes] | Any, location: str) -> Item:
    """The header block of the message ``handle`` reads (a file, or a mailbox's proxy of one)."""
    with handle:
        try:
            return Item(location, header_block(handle))
        except MalformedMessage as exc:
            return Item(location, error=exc)
