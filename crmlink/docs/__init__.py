"""Reference pages generated from the code: the command line (docs/cli.md), the canonical
records (docs/records.md) and the views hooks receive (docs/views.md).

``python -m crmlink.docs`` writes them into ``docs/`` (or the folder given);
``python -m crmlink.docs --check`` exits 1 naming the pages that differ from the code.
tests/test_reference_docs.py runs the check, so a change to a command, a record field, a
vocabulary or a view lands together with its page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def pages() -> dict[str, Callable[[], str]]:
    """File name -> function returning the page's Markdown."""
    from crmlink.docs import cli, records, views

    return {"cli.md": cli.page, "records.md": records.page, "views.md": views.page}


def stale(folder: Path) -> list[str]:
    """The generated pages in ``folder`` that are missing or differ from the code."""
    return [name for name, render in pages().items()
            if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != render()]


def write(folder: Path) -> list[Path]:
    """(Re)write every generated page into ``folder``; returns their paths."""
    written = []
    for name, render in pages().items():
        path = folder / name
        path.write_text(render(), encoding="utf-8")
        written.append(path)
    return written


__all__ = ["pages", "stale", "write"]
