"""The ledger's hash chains (ledger.chain): an entry edited, deleted or reordered directly in the
database is reported by `reconcile` with its account and seq; the incremental mode checks only
the new links (and the entry it continues from)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import Int64

from accounts.models import Account
from aegis.mongo import collection
from ledger.chain import GENESIS, chained
from ledger.models import LedgerEntry
from ledger.reconcile import ledger_reconcile
from tests.factories import make_account
from transfers.services import transfer_create


def pay(sender, receiver, paise: int, key: str) -> None:
    transfer_create(
        actor=sender.user, from_account_id=str(sender.pk), to_account_id=str(receiver.pk),
        amount_paise=paise, idempotency_key=key,
    )  # fmt: skip


@pytest.fixture
def bank(fund):
    """Asha funded, then five transfers to Ravi: Asha's chain has seqs 1..6, Ravi's 1..5."""
    asha, ravi = fund(make_account(), 100_000), make_account()
    for i in range(5):
        pay(asha, ravi, 1_000 + i, f"k{i}")
    return asha, ravi


def entry(account, seq: int) -> dict:
    return collection(LedgerEntry).find_one({"account_id": account.pk, "seq": seq})


def violations(**options) -> list[str]:
    report = ledger_reconcile(record_checkpoints=options.pop("record", False), **options)
    return report.violations


def test_every_posting_links_to_the_one_before_and_the_account_keeps_the_head(bank):
    asha, ravi = bank
    for account, last in ((asha, 6), (ravi, 5)):
        chain = list(collection(LedgerEntry).find({"account_id": account.pk}).sort("seq", 1))
        assert [e["seq"] for e in chain] == list(range(1, last + 1))
        assert chain[0]["prev_hash"] == GENESIS
        for before, after in zip(chain, chain[1:], strict=False):
            assert after["prev_hash"] == before["hash"] == chained(before, before["prev_hash"])["hash"]
        account.refresh_from_db()
        assert account.ledger_head == chain[-1]["hash"] and len(account.ledger_head) == 64
    assert violations() == []


def test_an_edit_that_keeps_every_other_invariant_is_reported_with_account_and_seq(bank):
    asha, _ = bank
    # One millisecond later: still in time order, the balances still add up; only the hash knows.
    moved = entry(asha, 3)["created_at"] + timedelta(milliseconds=1)
    collection(LedgerEntry).update_one({"account_id": asha.pk, "seq": 3}, {"$set": {"created_at": moved}})
    assert violations() == [f"account {asha.pk}: entry seq 3 does not match its hash (changed after it was written)"]


def test_a_forger_who_rehashes_the_edited_entry_breaks_the_next_link(bank):
    asha, _ = bank
    forged = {**entry(asha, 3), "amount": Int64(1), "balance_after": entry(asha, 3)["balance_after"]}
    forged = chained(forged, forged["prev_hash"])
    collection(LedgerEntry).update_one(
        {"_id": forged["_id"]}, {"$set": {"amount": forged["amount"], "hash": forged["hash"]}}
    )
    found = violations()
    assert (
        f"account {asha.pk}: entry seq 4 does not chain from seq 3 (an entry before it was changed, removed or moved)"
        in found
    )
    assert not any("seq 3 does not match its hash" in v for v in found)


def test_a_deleted_entry_is_reported(bank):
    asha, _ = bank
    collection(LedgerEntry).delete_one({"account_id": asha.pk, "seq": 4})
    found = violations()
    assert (
        f"account {asha.pk}: entry seq 5 does not chain from seq 3 (an entry before it was changed, removed or moved)"
        in found
    )
    assert f"account {asha.pk}: ledger seq jumps from 3 to 5" in found


def test_reordered_entries_are_reported(bank):
    _, ravi = bank
    second, third = entry(ravi, 2), entry(ravi, 3)
    entries = collection(LedgerEntry)
    entries.update_one({"_id": second["_id"]}, {"$set": {"seq": Int64(-3)}})  # the unique index: via a free seq
    entries.update_one({"_id": third["_id"]}, {"$set": {"seq": Int64(2)}})
    entries.update_one({"_id": second["_id"]}, {"$set": {"seq": Int64(3)}})
    found = violations()
    for seq in (2, 3):
        assert f"account {ravi.pk}: entry seq {seq} does not match its hash (changed after it was written)" in found
        assert f"account {ravi.pk}: entry seq {seq} does not chain from seq {seq - 1}" in " ".join(found)


def test_a_changed_head_is_reported(bank):
    asha, _ = bank
    collection(Account).update_one({"_id": asha.pk}, {"$set": {"ledger_head": "0" * 64}})
    assert violations() == [
        f"account {asha.pk}: ledger_head does not match the hash of its last entry (seq 6): the chain's end was changed"
    ]


def test_incremental_checks_the_new_links_and_the_entry_they_continue_from(bank):
    asha, ravi = bank
    assert violations(record=True) == []  # checkpoints at Asha seq 6, Ravi seq 5
    pay(asha, ravi, 500, "after-1")
    pay(asha, ravi, 700, "after-2")
    assert violations(incremental=True) == []
    entries = collection(LedgerEntry)
    # An old entry, behind the checkpoint: the incremental run does not read it; the full run does.
    entries.update_one({"account_id": ravi.pk, "seq": 2}, {"$set": {"currency": "USD"}})
    assert violations(incremental=True) == []
    assert f"account {ravi.pk}: entry seq 2 does not match its hash (changed after it was written)" in violations()
    entries.update_one({"account_id": ravi.pk, "seq": 2}, {"$set": {"currency": "INR"}})
    # A new link: seen by the incremental run.
    entries.update_one({"account_id": asha.pk, "seq": 8}, {"$set": {"currency": "USD"}})
    assert f"account {asha.pk}: entry seq 8 does not match its hash (changed after it was written)" in violations(
        incremental=True
    )
    entries.update_one({"account_id": asha.pk, "seq": 8}, {"$set": {"currency": "INR"}})
    # The checkpointed entry itself (the anchor the new links continue from).
    entries.update_one({"account_id": ravi.pk, "seq": 5}, {"$set": {"currency": "USD"}})
    assert f"account {ravi.pk}: checkpointed entry seq 5 was changed after it was verified" in violations(
        incremental=True
    )


def test_the_migration_chains_entries_written_before_the_chains(bank):
    from importlib import import_module

    from django.db import connection

    asha, ravi = bank
    collection(LedgerEntry).update_many({}, {"$unset": {"prev_hash": "", "hash": ""}})
    collection(Account).update_many({}, {"$set": {"ledger_head": ""}})
    assert any("carries no hash" in v for v in violations())
    migration = import_module("accounts.migrations.0010_account_ledger_head")
    with connection.schema_editor() as editor:
        migration.chain_existing(None, editor)
        migration.chain_existing(None, editor)  # a rerun changes nothing
    assert violations() == []
    pay(asha, ravi, 300, "after-migration")  # the engine continues the migrated chains
    assert violations() == []
