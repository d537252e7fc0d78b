"""Chain the entries posted before the ledger's hash chains existed (ledger.chain), and record
each account's head.

Each account's entries are read in seq order, in bounded seq ranges of the (account, seq) index,
and rewritten with their `prev_hash` and `hash` in bulk: a one-time pass over the history, run by
the deployer (the app's own role may not update the ledger: docs/deployment.md). Entries that
already carry a hash (a rerun) are chained from it unchanged.
"""

from django.db import migrations, models
from pymongo import UpdateOne

CHUNK = 5_000


def chain_existing(apps, schema_editor):
    from ledger.chain import chained

    db = schema_editor.connection.database
    for account in db["accounts"].find({"ledger_seq": {"$gt": 0}}, {"ledger_seq": 1}):
        head, low, top = "", 0, int(account["ledger_seq"])
        while low < top:
            high = min(low + CHUNK, top)
            entries = db["ledger_entries"].find(
                {"account_id": account["_id"], "seq": {"$gt": low, "$lte": high}}
            ).sort("seq", 1)
            writes = []
            for entry in entries:
                linked = chained(entry, head)
                if entry.get("hash") != linked["hash"] or entry.get("prev_hash") != linked["prev_hash"]:
                    writes.append(
                        UpdateOne({"_id": entry["_id"]}, {"$set": {"prev_hash": linked["prev_hash"], "hash": linked["hash"]}})
                    )
                head = linked["hash"]
            if writes:
                db["ledger_entries"].bulk_write(writes, ordered=False)
            low = high
        db["accounts"].update_one({"_id": account["_id"]}, {"$set": {"ledger_head": head}})


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_backfill_ledger_at"),
        ("ledger", "0011_entry_hash_chain"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="ledger_head",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
    ]
