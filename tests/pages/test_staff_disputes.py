"""The staff disputes and reversal pages against the real server: the queue and its filters, a
dispute's page, and maker-checker decisions as plain POST forms (CSRF, a recent password, PRG)
whose refusals come back on the page with the service's status."""

import re
from datetime import timedelta

import pytest
from bson import ObjectId
from django.test import Client

from accounts.models import Role
from aegis.clock import now_ms
from aegis.mongo import collection
from disputes import services
from disputes.models import Dispute, DisputeState, ProposalState, ReversalProposal
from ledger.models import AuditLog
from ledger.reconcile import ledger_reconcile
from tests.factories import PASSWORD, make_account, make_user
from tests.pages.conftest import client_for
from transfers.models import Transaction
from transfers.services import transfer_create


def send(sender, receiver, paise: int, key: str) -> dict:
    return transfer_create(
        actor=sender.user, from_account_id=str(sender.pk), to_account_id=str(receiver.pk),
        amount_paise=paise, idempotency_key=key,
    ).transaction  # fmt: skip


def balances(*accounts) -> list[int]:
    for account in accounts:
        account.refresh_from_db()
    return [account.balance for account in accounts]


def assert_reconciled() -> None:
    report = ledger_reconcile()
    assert report.ok, report.summary()


def proposal_of(txn: dict) -> dict:
    return collection(ReversalProposal).find_one({"original_id": txn["_id"]}, sort=[("proposed_at", -1)])


def dispute_doc(dispute: dict) -> dict:
    return collection(Dispute).find_one({"_id": dispute["_id"]})


@pytest.fixture
def case(fund):
    """A sender who paid a receiver ₹1,000 and disputed it; two staff members (maker, checker)."""
    sender = make_account(user=make_user(name="Asha Verma"))
    receiver = make_account(user=make_user(name="Ravi Kumar"))
    fund(sender, 500_000)
    txn = send(sender, receiver, 100_000, "pay-1")
    dispute = services.dispute_open(user=sender.user, transaction_id=str(txn["_id"]), reason="WRONG_ACCOUNT")
    maker = make_user(role=Role.ADMIN, name="Mira Maker")
    checker = make_user(role=Role.ADMIN, name="Chetan Checker")
    return {
        "sender": sender, "receiver": receiver, "txn": txn, "dispute": dispute,
        "maker": maker, "checker": checker,
    }  # fmt: skip


def test_the_queue_lists_oldest_first_and_filters_by_state_and_age(case, fund):
    other_sender, other_receiver = make_account(user=make_user(name="Old Timer")), make_account()
    fund(other_sender, 100_000)
    old_txn = send(other_sender, other_receiver, 20_000, "pay-old")
    old = services.dispute_open(user=other_sender.user, transaction_id=str(old_txn["_id"]), reason="FRAUD")
    # Opened ten days ago (the service stamps "now"; the queue reads opened_at).
    collection(Dispute).update_one({"_id": old["_id"]}, {"$set": {"opened_at": now_ms() - timedelta(days=10)}})
    client = client_for(case["maker"])

    page = client.get("/staff/disputes")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.index(str(old["_id"])) < html.index(str(case["dispute"]["_id"]))  # oldest first
    assert "Old Timer" in html and "Asha Verma" in html and "₹1,000.00" in html and "10 d" in html
    assert "Sent to the wrong account" in html and 'data-testid="staff-nav-disputes"' in html

    aged = client.get("/staff/disputes?min_age=5").content.decode()
    assert str(old["_id"]) in aged and str(case["dispute"]["_id"]) not in aged
    services.reversal_propose(
        staff=case["maker"], transaction_id=str(case["txn"]["_id"]), amount_paise=100_000,
        dispute_id=str(case["dispute"]["_id"]),
    )  # fmt: skip
    review = client.get("/staff/disputes?state=UNDER_REVIEW").content.decode()
    assert str(case["dispute"]["_id"]) in review and str(old["_id"]) not in review
    assert re.search(r'data-testid="pending-count"[^>]*>1<', review)
    assert "No disputes match" in client.get("/staff/disputes?state=REJECTED").content.decode()

    for bad in ("state=NOPE", "min_age=-1", "min_age=abc"):
        assert client.get(f"/staff/disputes?{bad}").status_code == 400, bad


def test_the_dispute_page_shows_transfer_history_audit_and_forms(case):
    client = client_for(case["maker"])
    page = client.get(f"/staff/disputes/{case['dispute']['_id']}")
    html = page.content.decode()
    assert page.status_code == 200
    txn_id = str(case["txn"]["_id"])
    assert f"/staff/transactions/{txn_id}" in html and 'data-testid="receipt-link"' in html
    for testid in ("sender-history", "receiver-history", "audit-trail", "propose-form", "reject-form"):
        assert f'data-testid="{testid}"' in html, testid
    assert "DISPUTE_OPENED" in html and 'value="1000.00"' in html  # prefilled with what is left
    assert client.get(f"/staff/disputes/{ObjectId()}").status_code == 404
    assert client.get("/staff/disputes/nope").status_code == 404


def test_the_maker_cannot_approve_and_a_checker_with_password_reverses(case):
    sender, receiver, dispute = case["sender"], case["receiver"], case["dispute"]
    maker, checker = client_for(case["maker"]), client_for(case["checker"])
    url = f"/staff/disputes/{dispute['_id']}"

    proposed = maker.post(f"{url}/propose", {"scope": "full", "amount": "", "note": "typo in the account"})
    assert proposed.status_code == 302 and proposed["Location"] == url
    proposal = proposal_of(case["txn"])
    assert (proposal["state"], proposal["amount"]) == (ProposalState.PENDING, 100_000)
    assert dispute_doc(dispute)["state"] == DisputeState.UNDER_REVIEW
    page = maker.get(url).content.decode()
    assert "a different staff member must approve" in page and 'data-testid="approve"' not in page

    # The maker posting approve anyway (password given): 403, nothing moved.
    form = {"action": "approve", "password": PASSWORD, "next": url}
    refused = maker.post(f"/staff/reversals/{proposal['_id']}", form)
    assert refused.status_code == 403 and "a different staff member must approve" in refused.content.decode()
    assert balances(sender, receiver) == [400_000, 100_000]

    # The checker without a password: asked for it, nothing moved; a wrong one: refused too.
    checker_page = checker.get(url).content.decode()
    assert 'data-testid="approve"' in checker_page and f'name="next" value="{url}"' in checker_page
    asked = checker.post(f"/staff/reversals/{proposal['_id']}", {"action": "approve", "next": url})
    assert asked.status_code == 403 and "Confirm with your password" in asked.content.decode()
    wrong = checker.post(f"/staff/reversals/{proposal['_id']}", form | {"password": "not it at all"})
    assert wrong.status_code == 403 and "That password is not right." in wrong.content.decode()
    assert balances(sender, receiver) == [400_000, 100_000]

    done = checker.post(f"/staff/reversals/{proposal['_id']}", form, follow=True)
    assert done.redirect_chain[-1] == (url, 302)
    html = done.content.decode()
    assert "Reversal executed: ₹1,000.00 returned" in html and "toast-success" in html
    assert balances(sender, receiver) == [500_000, 0]
    assert dispute_doc(dispute)["state"] == DisputeState.RESOLVED_REVERSED
    assert proposal_of(case["txn"])["decided_by"] == str(case["checker"].pk)
    assert "Chetan Checker" in html and "REVERSAL_APPROVED" in html

    # Approving again: 409, still moved once.
    again = checker.post(f"/staff/reversals/{proposal['_id']}", form)
    assert again.status_code == 409 and "reload" in again.content.decode()
    assert balances(sender, receiver) == [500_000, 0]
    assert collection(Transaction).count_documents({"reverses_id": case["txn"]["_id"]}) == 1
    assert_reconciled()


def test_rejecting_a_proposal_releases_it_and_the_dispute_can_be_rejected(case):
    dispute, txn = case["dispute"], case["txn"]
    maker, checker = client_for(case["maker"]), client_for(case["checker"])
    url = f"/staff/disputes/{dispute['_id']}"
    assert maker.post(f"{url}/propose", {"scope": "partial", "amount": "600", "note": ""}).status_code == 302
    # Too large for what is left: 422 on the page, nothing proposed.
    too_big = maker.post(f"{url}/propose", {"scope": "partial", "amount": "500"})
    assert too_big.status_code == 422 and "Only ₹400.00 of this transaction is left" in too_big.content.decode()
    assert maker.post(f"{url}/propose", {"scope": "partial", "amount": "abc"}).status_code == 400
    proposal = proposal_of(txn)

    # The dispute cannot be rejected while a proposal is live (422), and needs the answer (400).
    live = checker.post(f"{url}/reject", {"answer": "No.", "password": PASSWORD})
    assert live.status_code == 422 and "Reject or cancel" in live.content.decode()
    assert checker.post(f"{url}/reject", {"answer": "", "password": PASSWORD}).status_code == 400

    rejected = checker.post(f"/staff/reversals/{proposal['_id']}", {"action": "reject", "password": PASSWORD})
    assert rejected.status_code == 302
    assert proposal_of(txn)["state"] == ProposalState.REJECTED
    page = checker.get(url).content.decode()
    assert 'value="1000.00"' in page  # the whole amount is free again

    closed = checker.post(f"{url}/reject", {"answer": "The payee confirms receipt.", "password": PASSWORD})
    assert closed.status_code == 302
    final = dispute_doc(dispute)
    assert (final["state"], final["staff_answer"]) == (DisputeState.REJECTED, "The payee confirms receipt.")
    assert AuditLog.objects.filter(transaction_id=str(txn["_id"]), action="DISPUTE_REJECTED").count() == 1
    assert balances(case["sender"], case["receiver"]) == [400_000, 100_000]
    assert_reconciled()


def test_a_failed_reversal_shows_retry_and_a_retry_after_funding_executes_once(case, fund):
    sender, receiver, txn = case["sender"], case["receiver"], case["txn"]
    elsewhere = make_account()
    send(receiver, elsewhere, 100_000, "spent-it")  # the receiver spent the money
    maker, checker = client_for(case["maker"]), client_for(case["checker"])
    url = f"/staff/disputes/{case['dispute']['_id']}"
    maker.post(f"{url}/propose", {"scope": "full"})
    proposal = proposal_of(txn)
    form = {"action": "approve", "password": PASSWORD, "next": url}

    failed = checker.post(f"/staff/reversals/{proposal['_id']}", form, follow=True)
    html = failed.content.decode()
    assert "The reversal of ₹1,000.00 failed" in html and "toast-error" in html
    assert proposal_of(txn)["state"] == ProposalState.FAILED
    assert dispute_doc(case["dispute"])["state"] == DisputeState.UNDER_REVIEW  # stays open
    assert 'data-testid="retry"' in html and 'data-testid="cancel"' in html and 'data-testid="failure-reason"' in html
    assert balances(sender, receiver) == [400_000, 0]
    maker_view = maker.get(url).content.decode()
    assert "a different staff member must retry" in maker_view and 'data-testid="retry"' not in maker_view
    # The staff transaction page offers the same decisions.
    txn_page = checker.get(f"/staff/transactions/{txn['_id']}").content.decode()
    assert 'data-testid="retry"' in txn_page and 'data-testid="txn-reversals"' in txn_page

    fund(receiver, 100_000)
    retried = checker.post(f"/staff/reversals/{proposal['_id']}", {"action": "retry", "password": PASSWORD})
    assert retried.status_code == 302
    assert proposal_of(txn)["state"] == ProposalState.EXECUTED
    assert balances(sender, receiver) == [500_000, 0]
    again = checker.post(f"/staff/reversals/{proposal['_id']}", {"action": "retry", "password": PASSWORD})
    assert again.status_code == 409
    reversals = list(collection(Transaction).find({"reverses_id": txn["_id"], "status": "COMPLETED"}))
    assert len(reversals) == 1
    assert dispute_doc(case["dispute"])["state"] == DisputeState.RESOLVED_REVERSED
    assert_reconciled()


def test_a_funding_is_reversed_from_the_transaction_page_without_a_dispute(bank, fund):
    customer = make_account(user=make_user(name="Overfunded"))
    fund(customer, 50_000)
    funding = collection(Transaction).find_one({"to_account_id": customer.pk, "kind": "SYSTEM_FUNDING"})
    maker, checker = make_user(role=Role.ADMIN), make_user(role=Role.ADMIN)
    page = client_for(maker).get(f"/staff/transactions/{funding['_id']}").content.decode()
    assert 'data-testid="propose-reversal"' in page
    form_page = client_for(maker).get(f"/staff/transactions/{funding['_id']}/reverse")
    assert form_page.status_code == 200 and 'value="500.00"' in form_page.content.decode()
    made = client_for(maker).post(
        f"/staff/transactions/{funding['_id']}/reverse", {"scope": "partial", "amount": "200"}
    )
    assert made.status_code == 302 and made["Location"] == f"/staff/transactions/{funding['_id']}"
    proposal = proposal_of(funding)
    assert proposal["dispute_id"] is None and proposal["amount"] == 20_000
    listing = client_for(checker).get("/staff/reversals").content.decode()
    assert str(proposal["_id"]) in listing and 'data-testid="approve"' in listing
    done = client_for(checker).post(
        f"/staff/reversals/{proposal['_id']}",
        {"action": "approve", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert done.status_code == 302 and done["Location"] == f"/staff/reversals/{proposal['_id']}"  # never off-site
    assert balances(customer) == [30_000]
    assert (
        client_for(maker).post(f"/staff/transactions/{funding['_id']}/reverse", {"scope": "bogus"}).status_code == 400
    )
    assert_reconciled()


def test_customers_and_anonymous_are_refused_on_every_staff_dispute_route(case):
    proposal = services.reversal_propose(
        staff=case["maker"], transaction_id=str(case["txn"]["_id"]), amount_paise=10_000
    )
    d, p, t = case["dispute"]["_id"], proposal["_id"], case["txn"]["_id"]
    gets = ["/staff/disputes", f"/staff/disputes/{d}", "/staff/reversals", f"/staff/reversals/{p}",
            f"/staff/transactions/{t}/reverse"]  # fmt: skip
    posts = [f"/staff/disputes/{d}/propose", f"/staff/disputes/{d}/reject", f"/staff/reversals/{p}",
             f"/staff/transactions/{t}/reverse"]  # fmt: skip
    customer, anonymous = client_for(case["sender"].user), Client()
    for path in gets:
        assert customer.get(path).status_code == 403, path
        assert anonymous.get(path).status_code == 302 and "/login" in anonymous.get(path)["Location"], path
    data = {"action": "approve", "password": PASSWORD, "scope": "full", "answer": "x"}
    for path in posts:
        assert customer.post(path, data).status_code == 403, path
        assert anonymous.post(path, data).status_code in (302, 403), path
    assert proposal_of(case["txn"])["state"] == ProposalState.PENDING
    assert collection(ReversalProposal).count_documents({}) == 1
    assert dispute_doc(case["dispute"])["state"] == DisputeState.OPEN
    assert balances(case["sender"], case["receiver"]) == [400_000, 100_000]


def test_decisions_need_csrf(case):
    proposal = services.reversal_propose(
        staff=case["maker"], transaction_id=str(case["txn"]["_id"]), amount_paise=10_000
    )
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(case["checker"])
    refused = strict.post(f"/staff/reversals/{proposal['_id']}", {"action": "approve", "password": PASSWORD})
    assert refused.status_code == 403
    assert proposal_of(case["txn"])["state"] == ProposalState.PENDING
