"""Full-id reconciliation: mark stored rows deleted when the source no longer has them.

Incremental reads see soft deletes (Salesforce's recycle bin through ``queryAll``,
HubSpot's archived flag) but not hard deletes: a purged row simply stops coming back.
A stream that can list all its current ids implements :meth:`Stream.remote_ids`; the
sync engine calls :func:`reconcile` after reading the stream completely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmlink.core.connector import Connector, Stream
from crmlink.core.errors import CrmlinkError
from crmlink.core.store import Store

if TYPE_CHECKING:
    import sqlalchemy as sa


def present_ids(connector: Connector, stream: Stream) -> set[str] | None:
    """The stream's current ids at the source, or ``None`` when it does not reconcile.

    The client's exceptions are classified by the connector, as for ``records()``, so the
    engine's retry policy applies to the id listing too.
    """
    try:
        ids = stream.remote_ids()
        return None if ids is None else {str(i) for i in ids}
    except CrmlinkError:
        raise
    except Exception as exc:
        classified = connector.classify_error(exc)
        if classified is None:
            raise
        raise classified from exc


def reconcile(store: Store, conn: sa.Connection, stream: Stream, source: str, present: set[str]) -> int:
    """Mark deleted the live rows of ``stream`` in ``source`` whose ids are not ``present``
    (``conn`` is the store transaction the sync engine holds); returns how many were marked."""
    stored = store.live_ids(conn, stream.entity.entity, source)
    gone = [rid for rid in stored if rid not in present and stream.owns(rid)]
    return store.mark_deleted(conn, stream.entity.entity, source, gone) if gone else 0
