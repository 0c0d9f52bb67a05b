"""What a CRM plugin implements to take ``crmlink push``: a :class:`PushTarget`.

A target is offered through the ``register_push_targets`` hook and built with the
connector of the same name (so it logs in exactly as ``crmlink sync`` does). crmlink's
push engine does everything else: it computes the values from the audit, diffs them
against what :meth:`PushTarget.read` returns, writes the changed records a batch at a
time through :meth:`PushTarget.write`, retries with the sync's retry policy, records every
write in the store and refuses fields crmlink did not create (:meth:`PushTarget.setup`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from crmlink.core.connector import Connector
from crmlink.core.push.fields import FIELDS, PushField, Value
from crmlink.core.push.tasks import ExistingTask, TaskSpec


@dataclass(frozen=True)
class Update:
    """The values to write on one record: CRM field name -> value (``None`` blanks it)."""

    record_id: str
    values: Mapping[str, Value]


@dataclass(frozen=True)
class Outcome:
    """What the CRM said about one record of a write: written, or refused with its message
    (``CODE: message`` as the CRM gave it)."""

    record_id: str
    ok: bool
    message: str = ""
    #: the id the CRM gave a record this write created (a task)
    created_id: str = ""


@dataclass
class SetupReport:
    """What :meth:`PushTarget.setup` did: the fields it created (``object``, ``name``), the
    ones that were crmlink's already, and one line per other step (a permission set ...)."""

    created: list[tuple[str, str]] = field(default_factory=list)
    existing: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class PushTarget:
    """Writes crmlink's fields into one CRM.

    Class attributes: ``connector`` (the connector name it goes with), ``objects`` (the
    CRM's name for ``account`` and ``opportunity``), ``default_names`` (the CRM field
    name of each :data:`~crmlink.core.push.fields.FIELDS` key), ``read_batch`` and
    ``write_batch`` (records per read and per write request), and ``formula``: the
    request count the docs give, as one line.
    """

    connector: ClassVar[str] = ""
    objects: ClassVar[Mapping[str, str]] = {"account": "account", "opportunity": "opportunity"}
    default_names: ClassVar[Mapping[str, str]] = {}
    read_batch: ClassVar[int] = 100
    write_batch: ClassVar[int] = 100
    formula: ClassVar[str] = ""
    #: the CRM's task object (``Task``, ``tasks``); empty when the target makes no tasks
    task_object: ClassVar[str] = ""
    #: tasks per create or close request
    task_batch: ClassVar[int] = 100
    #: the name of the field holding crmlink's stable key on a task
    task_key_field: ClassVar[str] = ""
    #: requests one :meth:`write_bulk` of an object takes (for the dry run's count)
    bulk_requests: ClassVar[int] = 0

    def __init__(self, connector: Connector, names: Mapping[str, str]) -> None:
        self.crm = connector
        #: the CRM field name of each key (defaults with the config's renames)
        self.names = dict(names)
        #: above this many changed records of an object, :meth:`write_bulk` writes them all
        #: at once (``[push.<source>] bulk_threshold``); None: never
        self.bulk_threshold: int | None = None

    def field_name(self, spec: PushField) -> str:
        return self.names[spec.key]

    @property
    def fields(self) -> Sequence[PushField]:
        return FIELDS

    # -- what a target implements ------------------------------------------------------------
    def setup(self, dry_run: bool = False) -> SetupReport:
        """Create the fields that are missing (and whatever the CRM needs so that the
        running user may write them); a field of the same name crmlink did not create
        (its description lacks :data:`~crmlink.core.push.fields.OWNER_MARK`) raises a
        :class:`~crmlink.ConfigError`. With ``dry_run`` only say what it would do."""
        raise NotImplementedError

    def check(self) -> None:
        """Before a push: raise a :class:`~crmlink.FatalError` naming what is missing when
        a field does not exist or the running user may not write it."""

    def read(self, obj: str, record_ids: Sequence[str]) -> dict[str, dict[str, Value]]:
        """The current values (CRM field name -> value) of at most ``read_batch`` records,
        read from the CRM; a record the CRM no longer has is left out."""
        raise NotImplementedError

    def write(self, obj: str, updates: Sequence[Update]) -> list[Outcome]:
        """Write at most ``write_batch`` records; one :class:`Outcome` per record. A
        temporary failure of the whole request raises (the host retries)."""
        raise NotImplementedError

    # -- tasks (optional: set ``task_object``) ----------------------------------------------
    def read_tasks(self, keys: Sequence[str] | None = None) -> list[ExistingTask]:
        """crmlink's tasks in the CRM (those whose key field is set), or those of ``keys``."""
        raise NotImplementedError

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[Outcome]:
        """Create at most ``task_batch`` tasks, linked to their records; one Outcome per
        task with ``record_id`` = the task's key and ``created_id`` = the new task's id."""
        raise NotImplementedError

    def close_tasks(self, tasks: Sequence[ExistingTask]) -> list[Outcome]:
        """Mark at most ``task_batch`` tasks completed; ``record_id`` = the task's id."""
        raise NotImplementedError

    def write_bulk(self, obj: str, updates: Sequence[Update]) -> list[Outcome]:
        """Write any number of records in one bulk job (targets with ``bulk_requests``)."""
        raise NotImplementedError

    def requests_made(self) -> int:
        """API requests made so far (for the summary and the tests of the formula)."""
        return 0


__all__ = ["PushTarget", "Update", "Outcome", "SetupReport"]
