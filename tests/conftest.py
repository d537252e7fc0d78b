"""Test fixtures: one real embedded server per test session, a clean database per test.

The server runs on a free port with in-memory storage and test commands enabled (for
`failCommand` fault injection). Nothing here mocks the database. Its transaction lifetime is
short, so a transaction that a killed test process left open is aborted in seconds, not 60 s.
"""

import os

import pytest

from aegis import embedded
from aegis import settings as production_settings

# How long the server keeps a transaction open, ours or a killed client's (production: 60 s). Short,
# so a test that kills a client waits seconds for the server to let its documents go; long enough
# that the longest legitimate transaction here (marking 5,000 notifications read, ~5 s on a loaded
# machine, more under the full suite) is never aborted for its age.
TRANSACTION_LIFETIME_SECONDS = 30


@pytest.fixture(scope="session")
def embedded_server():
    server = embedded.start(storage=":memory:", test_commands=True, transaction_lifetime=TRANSACTION_LIFETIME_SECONDS)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(embedded_server):
    from django.conf import settings
    from django.db import connections
    from django_mongodb_backend.base import DatabaseWrapper

    settings.DATABASES["default"]["HOST"] = embedded_server.uri
    connections["default"].settings_dict["HOST"] = embedded_server.uri
    connections["default"].close()
    DatabaseWrapper._connection_pools.clear()


@pytest.fixture(autouse=True)
def _clean_database(db):
    """Every test starts on an empty, migrated database (flushed after each test)."""


@pytest.fixture(autouse=True)
def _force_login_is_a_whole_sign_in(monkeypatch):
    """`client.force_login(user)` stands for a finished sign-in: password and, for staff, the code.

    It skips the password check already; skipping the second factor too keeps the page tests about
    their pages. The two-factor tests (tests/accounts/test_two_factor*.py) sign in for real.
    """
    from django.test.client import ClientMixin

    from accounts.two_factor import SESSION_VERIFIED

    plain = ClientMixin.force_login

    def force_login(self, user, backend=None):
        plain(self, user, backend)
        session = self.session
        session[SESSION_VERIFIED] = True
        session.save()

    monkeypatch.setattr(ClientMixin, "force_login", force_login)


@pytest.fixture
def fail_point():
    """arm(data, times=1, skip=0): make the real server fail (or hold) matching commands (its failCommand)."""
    from aegis.mongo import get_client

    admin = get_client().admin

    def arm(data: dict, times: int = 1, skip: int = 0):
        mode = {"times": times, "skip": skip} if skip else {"times": times}
        admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": data})

    yield arm
    admin.command({"configureFailPoint": "failCommand", "mode": "off"})


@pytest.fixture
def mongo_uri(embedded_server):
    return embedded_server.uri


@pytest.fixture
def db_name():
    from django.db import connections

    return connections["default"].settings_dict["NAME"]


@pytest.fixture
def subprocess_env(mongo_uri, db_name):
    """Environment for OS-process workers that must talk to this test's database."""
    env = dict(os.environ)
    env.update(MONGODB_URI=mongo_uri, AEGIS_DB_NAME=db_name, DJANGO_SETTINGS_MODULE="tests.settings")
    return env


@pytest.fixture
def production_hashers(settings):
    """The real password hashers (bcrypt first), for the tests of hashing itself; the suite's
    settings (tests/settings.py) use a fast one everywhere else."""
    settings.PASSWORD_HASHERS = production_settings.PASSWORD_HASHERS


# --- the bank: bootstrap and real funding, shared by every app's tests ------------------------


@pytest.fixture
def bank(tmp_path):
    """The bootstrapped bank: system user with its funding account, and the first admin."""
    from accounts.services import system_bootstrap

    return system_bootstrap(credentials_path=tmp_path / "credentials.json")


@pytest.fixture
def fund(bank):
    """Fund an account through the real system-funding path (so reconcile stays exact)."""
    from transfers.services import system_fund

    counter = iter(range(1, 10**9))

    def _fund(account, paise: int):
        while paise > 0:
            chunk = min(paise, 1_000_000)
            system_fund(
                actor=bank.system_user,
                to_account_id=str(account.pk),
                amount_paise=chunk,
                idempotency_key=f"fund-{account.pk}-{next(counter)}",
            )
            paise -= chunk
        account.refresh_from_db()
        return account

    return _fund


@pytest.fixture
def funded_pair(fund):
    from tests.factories import make_account

    sender, receiver = make_account(), make_account()
    fund(sender, 500_000)  # ₹5,000
    return sender, receiver
