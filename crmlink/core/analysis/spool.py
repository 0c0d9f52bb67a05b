"""Account entries kept on disk while the audit runs: each account's entry is turned into
its JSON text as soon as the account is scored and judged, written to a temporary file,
and read back in the document's order (the accounts that need attention first, known
only once every account is done). The audit then holds one account's relationship map
at a time, whatever the size of the portfolio."""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType

from crmlink.core.analysis.spill import NUMBERS
from crmlink.core.document import AccountEntry, account_jsonb
from crmlink.core.model import chunked
from crmlink.core.readahead import ReadAhead

#: where one entry's text is: the spool's file, offset and length (or, for a text kept
#: elsewhere, :data:`ELSEWHERE` and its number among those: :meth:`AccountSpool.add_elsewhere`)
Span = tuple[int, int, int]
#: the "file" of a text kept elsewhere
ELSEWHERE = -1
#: reads the texts kept elsewhere of some keys: key -> the UTF-8 text
Fetch = Callable[[Sequence[str]], Mapping[str, bytes]]
#: texts :meth:`AccountSpool.datas` reads at a time
_AT_ONCE = 200


class AccountSpool:
    """The JSON texts of account entries in temporary files (deleted on :meth:`close`),
    each as :func:`~crmlink.core.document.account_jsonb` with ``indent`` makes it.

    Worker processes write to files of their own (:meth:`part`, opened before they are
    forked) and hand back where each text is; :meth:`adopt` numbers them as if added here.

    Where each text is goes in arrays of machine numbers, not a tuple per text: the
    spool numbers every account of the portfolio, and a tuple of three numbers costs
    about a hundred bytes where the arrays take twenty."""

    def __init__(self, indent: int | None = None) -> None:
        self.indent = indent
        self._files = [tempfile.TemporaryFile()]  # noqa: SIM115 - closed by close() or the with block
        # each text's span, by its number: file, offset, length
        self._parts, self._offsets, self._lengths = array("i"), array("q"), array(NUMBERS)
        # each text kept elsewhere, by its number there: its fetch's number (in the order
        # the fetches came: one per source) and its key
        self._fetches: dict[Fetch, int] = {}
        self._fetch_of, self._keys = array("i"), list[str]()

    def add(self, entry: AccountEntry) -> int:
        """Write ``entry``'s text; its number for :meth:`texts`."""
        return self.adopt(self.write(entry))

    def write(self, entry: AccountEntry, part: int = 0) -> Span:
        """Write ``entry``'s text to file ``part`` (0: the spool's own; or one of
        :meth:`part`, from the worker that has it) and say where it is."""
        return self._put(account_jsonb(entry, self.indent), part)

    def add_elsewhere(self, fetch: Fetch, key: str) -> int:
        """Add an entry's text kept elsewhere (the audit's cache, :mod:`.cache`: an
        earlier audit's text), read by ``fetch`` when the texts are read (:meth:`datas`),
        a batch of them at a time, rather than copied here first; its number."""
        self._fetch_of.append(self._fetches.setdefault(fetch, len(self._fetches)))
        self._keys.append(key)
        return self.adopt((ELSEWHERE, len(self._keys) - 1, 0))

    def _put(self, data: bytes, part: int) -> Span:
        file = self._files[part]
        offset = file.tell()
        file.write(data)
        if part:  # a worker's: readable by the audit's process as soon as the account is back
            file.flush()  # (its cache's writer stores the text meanwhile); a text is larger than the buffer anyway
        return part, offset, len(data)

    def data(self, span: Span) -> bytes:
        """The text at ``span`` as the UTF-8 bytes written, once :meth:`flush` made it
        readable: read where it is, without moving the file's position, so that another
        thread may read texts so while this one reads :meth:`texts` (the audit's cache
        stores them beside the document's writing)."""
        part, offset, length = span
        return os.pread(self._files[part].fileno(), length, offset)

    def flush(self, part: int | None = None) -> None:
        """Make what was written to file ``part`` (every file: ``None``) readable by
        another process; before forking, so that no worker holds a copy of unwritten text."""
        for file in self._files if part is None else [self._files[part]]:
            file.flush()

    def part(self) -> int:
        """A new file for one worker to :meth:`write` to (open it before forking)."""
        self._files.append(tempfile.TemporaryFile())  # noqa: SIM115 - closed by close()
        return len(self._files) - 1

    def adopt(self, span: Span) -> int:
        """Number the text at ``span`` (from :meth:`write`) for :meth:`texts`."""
        part, offset, length = span
        self._parts.append(part)
        self._offsets.append(offset)
        self._lengths.append(length)
        return len(self._parts) - 1

    def texts(self, order: Iterable[int]) -> Iterator[str]:
        """The texts of the entries numbered ``order``, in that order."""
        return (data.decode("utf-8") for data in self.datas(order))

    def datas(self, order: Iterable[int]) -> Iterator[bytes]:
        """The texts of the entries numbered ``order``, in that order, as the UTF-8 bytes
        written (for a document written as bytes: :meth:`.AuditDocument.write_json`)."""
        self.flush()
        handles = [file.fileno() for file in self._files]
        parts, offsets, lengths = self._parts, self._offsets, self._lengths
        # the next batch's texts kept elsewhere (the audit's cache: a query, on PostgreSQL
        # a wait for the server) are fetched in a thread while this one's are written
        batches = ((numbers, self._fetched([offsets[n] for n in numbers if parts[n] == ELSEWHERE]))
                   for numbers in chunked(order, _AT_ONCE))
        with ReadAhead(batches) as (ahead, _):
            for numbers, far in ahead:
                for number in numbers:
                    part, offset, length = parts[number], offsets[number], lengths[number]
                    if part == ELSEWHERE:
                        yield far[offset]
                    else:  # the files' positions stay where the next write goes
                        yield os.pread(handles[part], length, offset)

    def _fetched(self, numbers: list[int]) -> dict[int, bytes]:
        """The texts kept elsewhere numbered ``numbers`` there, each fetch asked once
        for its keys."""
        wanted: dict[int, list[int]] = {}
        for number in numbers:
            wanted.setdefault(self._fetch_of[number], []).append(number)
        fetches, keys = list(self._fetches), self._keys
        found: dict[int, bytes] = {}
        for fetch, some in wanted.items():
            texts = fetches[fetch]([keys[number] for number in some])
            found.update((number, texts[keys[number]]) for number in some)
        return found

    def close(self) -> None:
        for file in self._files:
            file.close()

    def __enter__(self) -> AccountSpool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
