"""Built-in contact classification: English and Chinese title rules.

A plugin with better rules (say, for one industry's titles) implements
``classify_contact`` too; it is asked first because it registers later.
"""

from __future__ import annotations

from crmlink import Classification, Contact, classify_title, hookimpl


@hookimpl(trylast=True)
def classify_contact(contact: Contact) -> Classification:
    return classify_title(contact.title, contact.raw.get("department"), contact.raw.get("buying_role"))
