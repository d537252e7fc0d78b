"""Login does not tell whether an email is registered: the same status and body for an unknown
email and a wrong password, on the API and the page, and the same time (Django's ModelBackend
runs the real BCryptSHA256 hasher once for an unknown email). Registration says only what the
product must: a taken email is refused (409, DESIGN §5), and nothing else depends on it."""

import statistics
import time

import pytest
from django.conf import settings
from django.test import Client

from tests.accounts.conftest import ApiClient
from tests.factories import PASSWORD, make_user

LOGIN = "/api/auth/login"
WRONG = "a wrong but plausible password"


def test_same_status_and_body_for_unknown_email_and_wrong_password(generous_limits):
    known = make_user(email="known@example.com")
    api = ApiClient()
    unknown = api.post(LOGIN, {"email": "nobody@example.com", "password": WRONG})
    wrong = api.post(LOGIN, {"email": known.email, "password": WRONG})
    assert unknown.status_code == wrong.status_code == 401
    assert (
        unknown.json()
        == wrong.json()
        == {
            "success": False,
            "message": "Invalid email or password.",
            "code": "invalid_credentials",
        }
    )
    page_unknown = Client().post("/login", {"email": "nobody@example.com", "password": WRONG})
    page_wrong = Client().post("/login", {"email": known.email, "password": WRONG})
    assert page_unknown.status_code == page_wrong.status_code == 200
    for response in (page_unknown, page_wrong):
        assert response.content.count(b"Invalid email or password.") == 1


def test_registration_reveals_a_taken_email_only_where_the_product_must(generous_limits):
    taken = make_user(email="taken@example.com")
    api = ApiClient()
    # A weak password is refused the same way whether or not the email is taken.
    weak_taken = api.post("/api/auth/register", {"name": "A", "email": taken.email, "password": "short"})
    weak_free = api.post("/api/auth/register", {"name": "A", "email": "free@example.com", "password": "short"})
    assert weak_taken.status_code == weak_free.status_code == 400
    assert weak_taken.json() == weak_free.json()
    # A valid sign-up for a taken email is refused (409); the per-IP auth limit bounds probing.
    taken_again = api.post("/api/auth/register", {"name": "A", "email": taken.email, "password": PASSWORD + "x"})
    assert taken_again.status_code == 409


@pytest.mark.slow
def test_unknown_and_known_emails_take_the_same_time(generous_limits, production_hashers):
    assert settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.BCryptSHA256PasswordHasher"
    known = make_user(email="timed@example.com")
    assert known.password.startswith("bcrypt_sha256$")
    api = ApiClient()
    api.post(LOGIN, {"email": "warm-up@example.com", "password": WRONG})  # first-call costs out of the way
    timings: dict[str, list[float]] = {"unknown": [], "known": []}
    for i in range(50):  # interleaved, so drift on the machine affects both alike
        for kind, email in (("unknown", f"ghost{i}@example.com"), ("known", known.email)):
            started = time.perf_counter()
            response = api.post(LOGIN, {"email": email, "password": WRONG})
            timings[kind].append(time.perf_counter() - started)
            assert response.status_code == 401
    unknown, known_ = statistics.median(timings["unknown"]), statistics.median(timings["known"])
    difference = abs(unknown - known_) / max(unknown, known_)
    print(
        f"login medians over 50 tries: unknown {unknown * 1000:.1f} ms, known {known_ * 1000:.1f} ms, "
        f"difference {difference:.1%}"
    )
    assert difference < 0.20
