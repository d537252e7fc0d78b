"""The rate-limit key is the client address as the app's own edge saw it: a forwarded-for header
is read only from a trusted proxy (AEGIS_TRUSTED_PROXIES), and only the hop that proxy appended,
so a spoofed X-Forwarded-For never changes a client's budget."""

import pytest
from django.test import Client, RequestFactory, override_settings

from accounts.ratelimits import client_ip

XFF = "HTTP_X_FORWARDED_FOR"


def ip(remote: str, forwarded: str | None = None) -> str:
    meta = {"REMOTE_ADDR": remote} | ({XFF: forwarded} if forwarded is not None else {})
    return client_ip(RequestFactory().get("/", **meta))


def test_without_a_configured_header_forwarded_headers_are_ignored(settings):
    settings.AEGIS_CLIENT_IP_HEADER = ""
    settings.AEGIS_TRUSTED_PROXIES = "10.0.0.0/8"
    assert ip("203.0.113.7", "198.51.100.1") == "203.0.113.7"


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),  # a direct client: header ignored
        ("203.0.113.7", "", "203.0.113.7"),
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),  # via the proxy: what it saw
        ("10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # a spoofed left part is ignored
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9", "198.51.100.1"),  # two trusted hops
        ("10.0.0.2", "", "10.0.0.2"),  # the proxy's own request
        ("2001:db8::1", "198.51.100.1", "2001:db8::1"),
    ],
)
def test_trusted_proxies_only(settings, remote, forwarded, expected):
    settings.AEGIS_CLIENT_IP_HEADER = XFF
    settings.AEGIS_TRUSTED_PROXIES = "10.0.0.0/8, 192.0.2.10"
    assert ip(remote, forwarded) == expected


def test_a_header_without_trusted_proxies_is_never_believed(settings):
    settings.AEGIS_CLIENT_IP_HEADER = XFF
    settings.AEGIS_TRUSTED_PROXIES = ""
    assert ip("10.0.0.2", "198.51.100.1") == "10.0.0.2"


@override_settings(AEGIS_RATELIMIT_GLOBAL="2/15m", AEGIS_CLIENT_IP_HEADER=XFF, AEGIS_TRUSTED_PROXIES="10.0.0.0/8")
def test_spoofed_forwarded_for_does_not_buy_a_new_budget(db):
    direct = Client(REMOTE_ADDR="203.0.113.50")
    statuses = [direct.get("/", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(4)]
    assert statuses == [200, 200, 429, 429]
    # Through the proxy, rotating the client-written part of the header does not help either ...
    proxy = Client(REMOTE_ADDR="10.0.0.2")
    statuses = [proxy.get("/", headers={"X-Forwarded-For": f"6.6.6.{i}, 198.51.100.77"}).status_code for i in range(3)]
    assert statuses == [200, 200, 429]
    # ... while another real client behind the same proxy has its own budget.
    assert proxy.get("/", headers={"X-Forwarded-For": "198.51.100.78"}).status_code == 200
