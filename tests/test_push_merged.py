"""crmlink push over several CRM sources audited as one portfolio: a merged account's
values and tasks go to its record in each CRM, under that CRM's id."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import load_config
from crmlink.core.host import get_plugin_host
from crmlink.core.model import Account, User
from crmlink.core.push.fields import account_values, desired
from crmlink.core.push.tasks import threshold, wanted
from crmlink.core.store import Store
from tests.mergefixtures import split


def test_a_merged_account_s_values_and_tasks_go_to_its_record_in_each_crm(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'two.db'}"
    sales, marketing = split(tmp_path / "split")
    for folder, name in ((sales, "sales"), (marketing, "marketing")):
        result = CliRunner().invoke(cli, ["sync", "csv", str(folder), "--source", name, "--db", db])
        assert result.exit_code == 0, result.output
    config = tmp_path / "crmlink.toml"
    config.write_text('[identity.match]\nsource_order = ["sales", "marketing"]\n', encoding="utf-8")
    store = Store(db)
    document = Audit(store, get_plugin_host(), load_config(str(config)), date(2026, 11, 20)).document(None)
    merged = [a for a in document.accounts if a.merged_from]
    assert len(merged) == 10
    values = {source: {rid: v for obj, rid, v in desired(document, source) if obj == "account"}
              for source in ("sales", "marketing")}
    assert len(values["sales"]) == len(values["marketing"]) == 30  # 20 of their own, 10 shared
    for account in merged:
        ids = {m.source: m.remote_id for m in account.merged_from or []}
        expected = account_values(account, document.as_of)
        assert values["sales"][ids["sales"]] == values["marketing"][ids["marketing"]] == expected
    deals = {source: {o.remote_id for o in document.opportunities if o.source == source}
             for source in ("sales", "marketing")}
    for source in ("sales", "marketing"):
        accounts = {a.remote_id: a for a in store.records_of(Account, source=source)}
        users = {u.remote_id: u for u in store.records_of(User, source=source)}
        tasks = wanted(document, source, threshold("low"), accounts, users)
        assert tasks
        for task in tasks.values():
            assert task.account in accounts  # the account's id in this CRM, never the other's
            assert task.deal is None or task.deal in deals[source]
