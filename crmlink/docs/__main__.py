"""``python -m crmlink.docs [--check] [FOLDER]``: write or check the generated reference pages."""

from __future__ import annotations

import sys
from pathlib import Path

from crmlink.docs import stale, write


def main(argv: list[str]) -> int:
    check = "--check" in argv
    folders = [a for a in argv if a != "--check"]
    folder = Path(folders[0] if folders else "docs")
    if not folder.is_dir():
        print(f"{folder} is not a folder; run from the repository root or name the docs folder",
              file=sys.stderr)
        return 2
    if check:
        outdated = stale(folder)
        for name in outdated:
            print(f"{folder / name} differs from the code; run: python -m crmlink.docs", file=sys.stderr)
        return 1 if outdated else 0
    for path in write(folder):
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
