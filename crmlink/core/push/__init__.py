"""``crmlink push``: write audit results back into the CRM (docs/push.md).

:mod:`.fields` says which fields and how their values come from the audit document,
:mod:`.target` is what a CRM plugin implements, :mod:`.engine` plans and writes, and
:mod:`.log` keeps the store's record of it.
"""

from crmlink.core.push.fields import FIELDS, OWNER_MARK, PushField
from crmlink.core.push.target import Outcome, PushTarget, SetupReport, Update
from crmlink.core.push.tasks import ExistingTask, TaskSpec

__all__ = ["FIELDS", "OWNER_MARK", "PushField", "PushTarget", "Update", "Outcome", "SetupReport",
           "TaskSpec", "ExistingTask"]
