"""Rate limits answer 429 with Retry-After; limits are settings, and groups never share counters."""

import pytest
from django.test import Client, override_settings

from ledger.models import AuditLog
from tests.accounts.conftest import ApiClient, api_as
from tests.factories import enrol_totp, totp_code

LOGIN = "/api/auth/login"


def assert_429(response):
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 15 * 60


@override_settings(AEGIS_RATELIMIT_GLOBAL="3/15m")
def test_global_limit_is_per_client_and_answers_429(db):
    client = Client(REMOTE_ADDR="10.0.0.1")
    assert [client.get("/").status_code for _ in range(3)] == [200, 200, 200]
    assert_429(client.get("/"))
    assert_429(client.get("/api/accounts"))  # every route counts
    assert client.get("/api/accounts").json()["code"] == "rate_limited"
    assert Client(REMOTE_ADDR="10.0.0.2").get("/").status_code == 200  # another client is unaffected
    assert client.get("/healthz").status_code == 200  # probes are exempt


@override_settings(AEGIS_RATELIMIT_STRICT="2/15m")
def test_strict_limit_on_auth_routes(user):
    api = ApiClient(REMOTE_ADDR="10.0.0.3")
    for _ in range(2):
        assert api.post(LOGIN, {"email": "x@example.com", "password": "whatever it is"}).status_code == 401
    response = api.post(LOGIN, {"email": "x@example.com", "password": "whatever it is"})
    assert_429(response)
    assert response.json() == {
        "success": False,
        "message": "Too many requests. Try again later.",
        "code": "rate_limited",
    }


@override_settings(AEGIS_RATELIMIT_STRICT="2/15m")
def test_strict_groups_have_separate_counters(admin, account):
    client = api_as(admin)
    client.defaults["REMOTE_ADDR"] = "10.0.0.4"
    assert client.patch(f"/api/admin/freeze/{account.pk}").status_code == 200
    assert client.patch(f"/api/admin/unfreeze/{account.pk}").status_code == 200
    assert_429(client.patch(f"/api/admin/freeze/{account.pk}"))
    # Auth routes from the same client still have their own budget.
    assert client.post("/api/auth/logout").status_code == 200


@override_settings(AEGIS_RATELIMIT_STRICT="2/15m")
def test_strict_limit_on_the_login_page(db):
    client = Client(REMOTE_ADDR="10.0.0.5")
    for _ in range(2):
        assert client.post("/login", {"email": "x@example.com", "password": "whatever it is"}).status_code == 200
    response = client.post("/login", {"email": "x@example.com", "password": "whatever it is"})
    assert_429(response)
    assert b"Too many requests" in response.content


def _login(ip: str, email: str, password: str, otp: str | None = None):
    body = {"email": email, "password": password} | ({"otp": otp} if otp else {})
    return ApiClient(REMOTE_ADDR=ip).post(LOGIN, body)


def _refusals(limit: str) -> int:
    return AuditLog.objects.filter(action="LOGIN_FAILED", details__reason="rate_limited", details__limit=limit).count()


@override_settings(AEGIS_RATELIMIT_LOGIN="2/15m")
def test_failed_logins_stop_the_address_that_made_them_even_with_the_right_password(user, password):
    assert [_login("10.1.0.1", user.email, "wrong wrong wrong").status_code for _ in range(2)] == [401, 401]
    assert_429(_login("10.1.0.1", user.email, password))
    assert _refusals("address") == 1
    assert _login("10.1.0.1", "other@example.com", "x" * 12).status_code == 401  # other accounts are unaffected


def test_a_strangers_guesses_do_not_lock_the_owner_out(user, password, admin):
    """Item 7 of issue 13: ten wrong guesses from anywhere used to lock the owner (and the admin)
    out for 15 minutes. With the default limits, a stranger exhausting their address's budget
    leaves the owner's own address untouched."""
    codes = {admin.pk: totp_code(enrol_totp(admin)), user.pk: None}  # staff sign in with their code too
    for victim in (admin, user):
        stranger = [_login("10.1.1.1", victim.email, "a guess that is wrong").status_code for _ in range(12)]
        assert stranger == [401] * 10 + [429] * 2
        owner = _login("10.1.9.9", victim.email, password, otp=codes[victim.pk])
        assert owner.status_code == 200 and owner.json()["user"]["email"] == victim.email
    failed = AuditLog.objects.filter(action="LOGIN_FAILED")
    assert failed.filter(details__reason="invalid_credentials").count() == 2 * 10
    assert _refusals("address") == 2 * 2


@override_settings(AEGIS_RATELIMIT_LOGIN="5/15m", AEGIS_RATELIMIT_LOGIN_ACCOUNT="6/15m")
def test_over_the_per_account_ceiling_only_addresses_without_failures_may_try(user, password):
    assert [_login("10.3.0.1", user.email, "wrong guess one").status_code for _ in range(4)] == [401] * 4
    assert [_login("10.3.0.2", user.email, "wrong guess two").status_code for _ in range(2)] == [401] * 2
    # 6 failures for the account: the ceiling. Addresses that failed twice wait, whatever they send ...
    for ip in ("10.3.0.1", "10.3.0.2"):
        assert_429(_login(ip, user.email, password))
    assert _refusals("account") == 2
    # ... a new address still gets two guesses, not five ...
    assert [_login("10.3.0.3", user.email, "wrong guess three").status_code for _ in range(3)] == [401, 401, 429]
    # ... and the owner, from an address that failed at most once, gets in.
    assert _login("10.3.0.4", user.email, password).status_code == 200
    assert _login("10.3.0.5", user.email, "the owner's typo").status_code == 401
    assert _login("10.3.0.5", user.email, password).status_code == 200
    # Another account's ceiling is its own.
    assert _login("10.3.0.1", "other@example.com", "x" * 12).status_code == 401


@override_settings(AEGIS_RATELIMIT_LOGIN="2/15m")
def test_a_right_password_forgets_that_addresss_earlier_failures(user, password):
    statuses = [
        _login("10.4.0.1", user.email, secret).status_code
        for secret in ("typo one", password, "typo two", "typo three", "typo four")
    ]
    assert statuses == [401, 200, 401, 401, 429]


@override_settings(AEGIS_RATELIMIT_LOGIN="2/15m", AEGIS_RATELIMIT_LOGIN_ACCOUNT="3/15m")
def test_login_limits_treat_unknown_emails_the_same(user):
    for email in (user.email, "ghost@example.com"):
        assert [_login("10.2.0.1", email, "wrong wrong wrong").status_code for _ in range(3)] == [401, 401, 429]
        assert _login("10.2.0.2", email, "wrong wrong wrong").status_code == 401  # 3 failures: the ceiling
        assert _login("10.2.0.2", email, "wrong wrong wrong").status_code == 401  # a first failure is allowed
        assert _login("10.2.0.2", email, "wrong wrong wrong").status_code == 429  # failed twice, over the ceiling


# --- strict limits count state-changing requests only (issue 13, item 12) ---------------------
@override_settings(AEGIS_RATELIMIT_STRICT="2/15m")
def test_polling_a_transfer_never_spends_the_transfer_budget(user, account):
    client = Client(REMOTE_ADDR="10.5.0.1", headers={"HX-Request": "true"})
    client.force_login(user)
    # The PROCESSING poll (GET, once a second) and plain reads: never counted against strict.
    for _ in range(6):
        assert client.get("/transfer?key=some-key").status_code == 200
    assert client.head("/transfer").status_code == 200
    assert client.options("/transfer").status_code != 429
    assert "strict:transfer" not in _counters("10.5.0.1")
    # POSTs still are: the first two go through, the third is over the limit.
    form = {"to_account": "000000000000000000000000", "amount": "1.00", "idempotency_key": "k-1"}
    assert [client.post("/transfer", form).status_code for _ in range(2)] == [200, 200]
    assert_429(client.post("/transfer", form))
    assert _counters("10.5.0.1")["global"]["count"] == 6 + 2 + 3  # the global limit counts everything


@override_settings(AEGIS_RATELIMIT_STRICT="2/15m")
def test_api_reads_on_a_strict_group_do_not_count_but_writes_do(admin, account):
    client = api_as(admin)
    client.defaults["REMOTE_ADDR"] = "10.5.0.2"
    for _ in range(4):
        assert client.get("/api/admin/users").status_code == 200
    assert client.patch(f"/api/admin/freeze/{account.pk}").status_code == 200
    assert client.patch(f"/api/admin/unfreeze/{account.pk}").status_code == 200
    assert_429(client.patch(f"/api/admin/freeze/{account.pk}"))


@pytest.mark.parametrize(
    "name",
    ["AEGIS_RATELIMIT_GLOBAL", "AEGIS_RATELIMIT_STRICT", "AEGIS_RATELIMIT_LOGIN", "AEGIS_RATELIMIT_LOGIN_ACCOUNT"],
)
def test_limits_come_from_the_environment(name, monkeypatch):
    from aegis import settings as aegis_settings

    monkeypatch.setenv(name, "7/1h")
    assert aegis_settings.env_rate(name, "1/1s") == "7/1h"
    monkeypatch.setenv(name, "lots")
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        aegis_settings.env_rate(name, "1/1s")


# --- the counter itself (accounts.ratelimits.limits_hit) ------------------------------------------
def _counters(key):
    from accounts.models import RateLimitCounter
    from aegis.mongo import collection

    return collection(RateLimitCounter).find_one({"_id": key})["counters"]


def test_one_document_holds_every_group_of_a_client_with_separate_counts(db):
    from accounts.ratelimits import Limit, limits_hit
    from aegis.errors import RateLimited

    both = [Limit("global", "5/15m"), Limit("strict:transfer", "2/15m")]
    limits_hit(key="10.9.0.1", limits=both)
    limits_hit(key="10.9.0.1", limits=[Limit("global", "5/15m")])
    limits_hit(key="10.9.0.1", limits=both)
    counters = _counters("10.9.0.1")
    assert (counters["global"]["count"], counters["strict:transfer"]["count"]) == (3, 2)
    with pytest.raises(RateLimited) as raised:
        limits_hit(key="10.9.0.1", limits=both)  # strict is over (3 > 2), global is not
    assert 0 < raised.value.retry_after <= 15 * 60
    assert _counters("10.9.0.1")["global"]["count"] == 4  # the refused hit still counted


def test_a_new_window_starts_the_count_again(db, monkeypatch):
    from accounts import ratelimits
    from accounts.ratelimits import Limit, limits_hit
    from aegis.errors import RateLimited

    clock = [1_800_000_000.25]  # 0.25 s into a 1-second window
    monkeypatch.setattr(ratelimits, "_now", lambda: clock[0])
    per_second = [Limit("global", "1/1s")]
    limits_hit(key="10.9.0.2", limits=per_second)
    with pytest.raises(RateLimited) as raised:
        limits_hit(key="10.9.0.2", limits=per_second)
    assert raised.value.retry_after == 1  # 0.75 s left, never advertised as 0
    clock[0] += 1.0  # the next window
    limits_hit(key="10.9.0.2", limits=per_second)
    assert _counters("10.9.0.2")["global"] == {"window": 1_800_000_001, "count": 1}


def test_a_host_whose_clock_lags_adds_to_the_newer_window_instead_of_resetting_it(db, monkeypatch):
    from accounts import ratelimits
    from accounts.ratelimits import Limit, limits_hit

    per_minute = [Limit("global", "10/1m")]
    monkeypatch.setattr(ratelimits, "_now", lambda: 1_800_000_060.5)  # a host already in the next minute
    limits_hit(key="10.9.0.5", limits=per_minute)
    monkeypatch.setattr(ratelimits, "_now", lambda: 1_800_000_059.9)  # a host 0.6 s behind
    limits_hit(key="10.9.0.5", limits=per_minute)
    assert _counters("10.9.0.5")["global"] == {"window": 1_800_000_060, "count": 2}


def test_retry_after_waits_for_the_longest_exceeded_limit(db, monkeypatch):
    from accounts import ratelimits
    from accounts.ratelimits import Limit, limits_hit
    from aegis.errors import RateLimited

    monkeypatch.setattr(ratelimits, "_now", lambda: 1_800_000_000.0)  # a multiple of 60 and 3600
    both = [Limit("strict:auth", "1/1m"), Limit("global", "1/1h")]
    limits_hit(key="10.9.0.6", limits=both)
    with pytest.raises(RateLimited) as raised:
        limits_hit(key="10.9.0.6", limits=both)
    assert raised.value.retry_after == 3600


def test_check_only_reads_and_refuses_at_the_limit(db):
    from accounts.ratelimits import limit_hit
    from aegis.errors import RateLimited

    limit_hit(group="login-account", rate="2/15m", key="asha@example.com", increment=False)  # no document yet
    for _ in range(2):
        limit_hit(group="login-account", rate="2/15m", key="asha@example.com")
    with pytest.raises(RateLimited):
        limit_hit(group="login-account", rate="2/15m", key="asha@example.com", increment=False)
    assert _counters("asha@example.com")["login-account"]["count"] == 2  # checking did not count


def test_concurrent_first_hits_on_a_new_key_all_count(db):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from accounts.ratelimits import Limit, limits_hit

    def hit(_):
        try:
            limits_hit(key="10.9.0.3", limits=[Limit("global", "1000/15m"), Limit("strict:auth", "1000/15m")])
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(hit, range(80)))
    counters = _counters("10.9.0.3")
    assert (counters["global"]["count"], counters["strict:auth"]["count"]) == (80, 80)


def test_unknown_paths_count_against_the_global_limit(db, settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "2/15m"
    client = Client(REMOTE_ADDR="10.0.0.8")
    assert [client.get(f"/no-such-page-{i}").status_code for i in range(2)] == [404, 404]
    assert_429(client.get("/no-such-page-3"))


def test_a_login_email_that_is_not_valid_utf8_is_refused_cleanly(db):
    response = ApiClient(REMOTE_ADDR="10.0.0.10").post(LOGIN, {"email": "\ud800@example.com", "password": "x" * 12})
    assert response.status_code == 400 and "not valid Unicode" in response.json()["message"]


@pytest.mark.parametrize("group", ["Global", "a.b", "$x", ""])
def test_group_names_that_could_address_other_fields_are_refused(db, group):
    from accounts.ratelimits import Limit, limits_hit

    with pytest.raises(ValueError):
        limits_hit(key="10.9.0.4", limits=[Limit(group, "1/1m")])


@override_settings(AEGIS_RATELIMIT_STRICT="2/15m", AEGIS_RATELIMIT_GLOBAL="100/15m")
def test_a_strict_route_is_counted_once_per_request(user):
    """The middleware counts the route's strict group with the global one; the policy must not
    count it a second time (which would halve every strict budget)."""
    api = ApiClient(REMOTE_ADDR="10.0.0.9")
    api.post(LOGIN, {"email": "x@example.com", "password": "whatever it is"})
    assert _counters("10.0.0.9")["strict:auth"]["count"] == 1
    assert _counters("10.0.0.9")["global"]["count"] == 1


def test_an_oversized_key_is_hashed_and_still_counted(db):
    from accounts.models import RateLimitCounter
    from accounts.ratelimits import limit_hit
    from aegis.errors import RateLimited
    from aegis.mongo import collection

    key = "x" * 100_000
    limit_hit(group="global", rate="1/15m", key=key)
    with pytest.raises(RateLimited):
        limit_hit(group="global", rate="1/15m", key=key)
    limit_hit(group="global", rate="1/15m", key="\ud800")  # not encodable as UTF-8: hashed too
    ids = sorted(doc["_id"] for doc in collection(RateLimitCounter).find({}, {"_id": 1}))
    assert len(ids) == 2 and all(i.startswith("sha256:") and len(i) < 100 for i in ids)


def test_counters_expire_through_a_ttl_index(db):
    from datetime import UTC

    from accounts.models import RateLimitCounter
    from accounts.ratelimits import Limit, limits_hit
    from aegis.mongo import collection

    indexes = collection(RateLimitCounter).index_information()
    ttl = [spec for spec in indexes.values() if "expireAfterSeconds" in spec]
    assert ttl and ttl[0]["key"] == [("expires_at", 1)] and ttl[0]["expireAfterSeconds"] == 0
    limits_hit(key="10.9.0.7", limits=[Limit("global", "5/15m"), Limit("strict:auth", "5/1h")])
    doc = collection(RateLimitCounter).find_one({"_id": "10.9.0.7"})
    window_end = doc["counters"]["strict:auth"]["window"] + 3600  # the longest window held
    expires = doc["expires_at"]
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)  # stored in UTC
    assert expires.timestamp() == pytest.approx(window_end, abs=1e-3)
