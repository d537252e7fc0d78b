"""Security headers on every kind of response (pages, API, static, redirects, 404, 429, 500),
HSTS over HTTPS in production, a relaxed style policy on /api/docs only, templates free of
inline script/style/handlers, and error pages that never show internals while the unexpected
error is logged with its request id."""

import logging
import re
from pathlib import Path

import pytest
from django.test import Client, override_settings

from aegis.security import CSP, CSP_RELAXED_STYLES
from tests.security.urls_boom import SECRET_DETAIL

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def assert_security_headers(response, csp=CSP):
    assert response["Content-Security-Policy"] == csp
    assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_headers_on_pages_api_static_and_redirects(generous_limits):
    client = Client()
    for path, status in [
        ("/", 200),
        ("/login", 200),
        ("/dashboard", 302),  # to the login page
        ("/api/accounts", 401),
        ("/api/openapi.json", 200),
        ("/static/css/aegis.css", 200),
        ("/no-such-page", 404),
        ("/api/no-such-route", 404),
    ]:
        response = client.get(path)
        assert response.status_code == status, path
        assert_security_headers(response)
    login = client.post("/api/auth/login", "{}", content_type="application/json")
    assert login.status_code == 400
    assert_security_headers(login)


@override_settings(AEGIS_RATELIMIT_GLOBAL="1/15m")
def test_headers_on_rate_limited_responses(db):
    client = Client(REMOTE_ADDR="10.7.0.1")
    client.get("/")
    for path in ("/", "/api/accounts"):
        response = client.get(path)
        assert response.status_code == 429
        assert_security_headers(response)


def test_only_the_api_docs_relax_styles_and_never_scripts(db):
    response = Client().get("/api/docs")
    assert response.status_code == 200
    assert_security_headers(response, csp=CSP_RELAXED_STYLES)
    assert "'unsafe-inline'" not in CSP and "'unsafe-inline'" not in CSP_RELAXED_STYLES.split("style-src")[0]
    assert "unsafe-eval" not in CSP_RELAXED_STYLES


@override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True, SECURE_HSTS_PRELOAD=True)
def test_hsts_over_https(db):
    secure = Client().get("/", secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "Strict-Transport-Security" not in Client().get("/")  # browsers ignore it over HTTP anyway


def test_templates_have_no_inline_script_style_or_handlers():
    problems = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for pattern in (
            r"<script(?![^>]*\bsrc=)[^>]*>",
            r"<style\b",
            r"\sstyle=",
            r"\son[a-z]+\s*=",
            r"hx-on",
            "javascript:",
        ):
            if re.search(pattern, text, flags=re.IGNORECASE):
                problems.append(f"{path.relative_to(TEMPLATES)}: {pattern}")
    assert problems == []
    base = (TEMPLATES / "base.html").read_text()
    # htmx injects no indicator <style>, and its settle step copies no style attribute (CSP).
    assert """content='{"includeIndicatorStyles":false,"attributesToSettle":["class","width","height"]}'""" in base


@pytest.mark.urls("tests.security.urls_boom")
def test_unexpected_page_error_shows_no_internals_and_is_logged(db, caplog):
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="aegis.errors"):
        response = client.get("/boom")
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in body
    assert SECRET_DETAIL not in body and "Traceback" not in body and "RuntimeError" not in body
    assert_security_headers(response)
    request_id = response["X-Request-ID"]
    (record,) = [r for r in caplog.records if r.name == "aegis.errors"]
    assert record.request_id == request_id and record.exc_info[0] is RuntimeError


@pytest.mark.urls("tests.security.urls_boom")
def test_unexpected_api_error_is_generic_json(db, caplog):
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="aegis.errors"):
        response = client.get("/api/boom")
    assert response.status_code == 500
    assert response.json() == {
        "success": False,
        "message": "Something went wrong on our side.",
        "code": "server_error",
        "requestId": response["X-Request-ID"],
    }
    assert SECRET_DETAIL not in response.content.decode()
    assert_security_headers(response)
    assert [r.request_id for r in caplog.records if r.name == "aegis.errors"] == [response["X-Request-ID"]]
