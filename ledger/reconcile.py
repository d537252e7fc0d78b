"""The invariant checker behind `manage.py reconcile` (DESIGN §4).

Reads the whole database and reports every violation of:
1. money is conserved: the sum of all balances (system account included) is zero, since every
   account opens at zero and money only enters through the system account;
2. no account but the system account is below zero;
3. every COMPLETED transaction has exactly one DEBIT (sender) and one CREDIT (receiver) entry
   of its amount, and no transaction in any other status has any entry;
4. each account's balance equals the sum of its ledger entries;
5. each account's entries, in `seq` order, run 1..n with no gap, and each `balance_after` is
   the previous one plus or minus the entry's amount, ending at the balance.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from accounts.models import Account, User
from aegis.mongo import collection
from ledger.models import EntryType, LedgerEntry
from transfers.models import Transaction, TransactionStatus

MAX_REPORTED = 50


@dataclass
class ReconcileReport:
    accounts: int = 0
    transactions: int = 0
    entries: int = 0
    total_balance: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, message: str) -> None:
        self.violations.append(message)

    def summary(self) -> str:
        lines = [
            f"accounts: {self.accounts}  transactions: {self.transactions}  ledger entries: {self.entries}",
            "transactions by status: " + (", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items())) or "none"),
            f"sum of balances: {self.total_balance} paise",
        ]
        if self.ok:
            lines.append("reconcile: OK — every invariant holds")
        else:
            lines.append(f"reconcile: {len(self.violations)} VIOLATION(S)")
            lines += [f"  - {v}" for v in self.violations[:MAX_REPORTED]]
            if len(self.violations) > MAX_REPORTED:
                lines.append(f"  ... and {len(self.violations) - MAX_REPORTED} more")
        return "\n".join(lines)


def ledger_reconcile() -> ReconcileReport:
    report = ReconcileReport()
    system_user_ids = {u["_id"] for u in collection(User).find({"is_system": True}, {"_id": 1})}
    accounts = {a["_id"]: a for a in collection(Account).find({}, {"balance": 1, "ledger_seq": 1, "user_id": 1})}
    report.accounts = len(accounts)
    report.total_balance = sum(int(a.get("balance", 0)) for a in accounts.values())
    if report.total_balance != 0:
        report.add(f"money not conserved: balances sum to {report.total_balance} paise, expected 0")
    for account_id, account in accounts.items():
        if account["user_id"] not in system_user_ids and account.get("balance", 0) < 0:
            report.add(f"account {account_id} is negative: {account['balance']} paise")

    transactions = {
        t["_id"]: t
        for t in collection(Transaction).find({}, {"status": 1, "amount": 1, "from_account_id": 1, "to_account_id": 1})
    }
    report.transactions = len(transactions)
    for t in transactions.values():
        report.by_status[t["status"]] = report.by_status.get(t["status"], 0) + 1

    entries_by_txn: dict = defaultdict(list)
    running: dict = {}
    for entry in collection(LedgerEntry).find({}).sort([("account_id", 1), ("seq", 1)]):
        report.entries += 1
        entries_by_txn[entry["transaction_id"]].append(entry)
        _check_sequence(report, running, entry)
    for account_id, account in accounts.items():
        seq, balance = running.get(account_id, (0, 0))
        if balance != account.get("balance", 0):
            report.add(f"account {account_id}: balance {account.get('balance')} != ledger sum {balance}")
        if seq != account.get("ledger_seq", 0):
            report.add(f"account {account_id}: ledger_seq {account.get('ledger_seq')} != last entry seq {seq}")
    for account_id in running.keys() - accounts.keys():
        report.add(f"ledger entries for unknown account {account_id}")

    for txn_id, txn in transactions.items():
        entries = entries_by_txn.pop(txn_id, [])
        if txn["status"] == TransactionStatus.COMPLETED:
            debits = [e for e in entries if e["type"] == EntryType.DEBIT]
            credits = [e for e in entries if e["type"] == EntryType.CREDIT]
            if not (
                len(entries) == 2
                and len(debits) == 1
                and len(credits) == 1
                and debits[0]["account_id"] == txn["from_account_id"]
                and credits[0]["account_id"] == txn["to_account_id"]
                and debits[0]["amount"] == txn["amount"] == credits[0]["amount"]
            ):
                report.add(f"COMPLETED transaction {txn_id} has entries {[_describe(e) for e in entries]}")
        elif entries:
            report.add(f"{txn['status']} transaction {txn_id} has {len(entries)} ledger entries")
    for txn_id, entries in entries_by_txn.items():
        report.add(f"{len(entries)} ledger entries for unknown transaction {txn_id}")
    return report


def _check_sequence(report: ReconcileReport, running: dict, entry: dict) -> None:
    account_id = entry["account_id"]
    seq, balance = running.get(account_id, (0, 0))
    signed = entry["amount"] if entry["type"] == EntryType.CREDIT else -entry["amount"]
    if entry["amount"] <= 0:
        report.add(f"entry {entry['_id']}: non-positive amount {entry['amount']}")
    if entry["seq"] != seq + 1:
        report.add(f"account {account_id}: ledger seq jumps from {seq} to {entry['seq']}")
    if entry["balance_after"] != balance + signed:
        report.add(
            f"account {account_id}: entry {entry['_id']} balance_after {entry['balance_after']} "
            f"!= {balance} {'+' if signed > 0 else '-'} {abs(signed)}"
        )
    running[account_id] = (entry["seq"], balance + signed)


def _describe(entry: dict) -> str:
    return f"{entry['type']} {entry['amount']} on {entry['account_id']}"
