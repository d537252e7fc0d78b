"""Give accounts posted to before `ledger_at` existed the time of their newest entry.

Postings stamp their entries with `max(now, ledger_at)` (transfers.services._posting_stamp). An
account whose `ledger_at` is still empty would take its next posting's clock as it is, which a
host running behind could put before the account's newest entry. One point read of the
(account, seq) index per such account.
"""

from django.db import migrations


def backfill(apps, schema_editor):
    db = schema_editor.connection.database
    pending = db["accounts"].find({"ledger_seq": {"$gt": 0}, "ledger_at": None}, {"ledger_seq": 1})
    for account in pending:
        newest = db["ledger_entries"].find_one(
            {"account_id": account["_id"], "seq": account["ledger_seq"]}, {"created_at": 1}
        )
        if newest is not None:
            db["accounts"].update_one(
                {"_id": account["_id"], "ledger_at": None}, {"$set": {"ledger_at": newest["created_at"]}}
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_account_ledger_at"),
        ("ledger", "0006_ledger_seq_plain_index"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
