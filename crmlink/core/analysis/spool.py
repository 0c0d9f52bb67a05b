"""Account entries kept on disk while the audit runs: each account's entry is turned into
its JSON text as soon as the account is scored and judged, written to a temporary file,
and read back in the document's order (the accounts that need attention first, known
only once every account is done). The audit then holds one account's relationship map
at a time, whatever the size of the portfolio."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from types import TracebackType

from crmlink.core.document import AccountEntry, account_json


class AccountSpool:
    """The JSON texts of account entries in a temporary file (deleted on :meth:`close`),
    each as :func:`~crmlink.core.document.account_json` with ``indent`` makes it."""

    def __init__(self, indent: int | None = None) -> None:
        self.indent = indent
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close() or the with block
        self._spans: list[tuple[int, int]] = []

    def add(self, entry: AccountEntry) -> int:
        """Write ``entry``'s text; its number for :meth:`texts`."""
        data = account_json(entry, self.indent).encode("utf-8")
        self._spans.append((self._file.tell(), len(data)))
        self._file.write(data)
        return len(self._spans) - 1

    def texts(self, order: Iterable[int]) -> Iterator[str]:
        """The texts of the entries numbered ``order``, in that order."""
        self._file.flush()
        for number in order:
            offset, length = self._spans[number]
            self._file.seek(offset)
            yield self._file.read(length).decode("utf-8")
        self._file.seek(0, 2)  # where the next add() writes

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AccountSpool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
