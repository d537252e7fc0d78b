import pytest

from accounts.services import system_bootstrap
from tests.factories import make_account
from transfers.services import system_fund


@pytest.fixture
def bank(tmp_path):
    """The bootstrapped bank: system user with its funding account, and the first admin."""
    return system_bootstrap(credentials_path=tmp_path / "credentials.json")


@pytest.fixture
def fund(bank):
    """Fund an account through the real system-funding path (so reconcile stays exact)."""
    counter = iter(range(1, 10**9))

    def _fund(account, paise: int):
        while paise > 0:
            chunk = min(paise, 1_000_000)
            system_fund(actor=bank.system_user, to_account_id=str(account.pk), amount_paise=chunk,
                        idempotency_key=f"fund-{account.pk}-{next(counter)}")
            paise -= chunk
        account.refresh_from_db()
        return account

    return _fund


@pytest.fixture
def funded_pair(fund):
    sender, receiver = make_account(), make_account()
    fund(sender, 500_000)  # ₹5,000
    return sender, receiver
