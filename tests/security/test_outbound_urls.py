"""Outbound URLs (SSRF): callback and webhook URLs are checked when saved and when called: http(s)
only, no userinfo, public addresses after resolution, redirects never followed (R-DLV-4, R-BIL-6)."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from billing import services as billing
from billing.models import Account
from smsplatform import webhooks
from smsplatform.webhooks import OutboundUrlRefused, check_outbound_url

INTERNAL = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/",
    "http://192.168.0.10/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/",
    "http://2130706433/",
    "http://0x7f000001/",
    "https://100.64.0.1/",
]
MALFORMED = [
    "ftp://example.com/x",
    "file:///etc/passwd",
    "gopher://example.com/",
    "http://user:pass@example.com/",
    "http://user@example.com/",
    "http:///nohost",
    "http://exa mple.com/",
    "http://例子.测试/",
    "http://example.com:99999/",
    "javascript:alert(1)",
]


@pytest.fixture
def no_private(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = False
    settings.DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS = False


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused(no_private, url):
    with pytest.raises(OutboundUrlRefused):
        check_outbound_url(url)


@pytest.mark.parametrize("url", MALFORMED)
def test_non_http_or_userinfo_urls_are_refused_even_in_development(settings, url):
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True
    with pytest.raises(OutboundUrlRefused):
        check_outbound_url(url)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/", "http://127.0.0.1:6379/", "ftp://x.example/"])
def test_billing_webhook_to_an_internal_address_is_refused_when_saved(client_a, tenant_a, no_private, url):
    """R-BIL-6: 400 invalid_webhook_url, and the account keeps its old settings."""
    before = Account.objects.filter(tenant=tenant_a).values_list("alert_webhook_url", flat=True).first()
    response = client_a.put("/api/v1/billing/alert", {"threshold": 1000, "webhook_url": url}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_webhook_url"
    assert Account.objects.filter(tenant=tenant_a).values_list("alert_webhook_url", flat=True).first() == before


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://[::1]:8080/cb", "http://a:b@example.com/"])
def test_callback_settings_to_an_internal_address_are_refused_when_saved(client_a, no_private, url):
    response = client_a.put("/api/v1/callback-settings", {"callback_url": url}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("invalid_callback_url", "validation_error")


def test_send_with_an_internal_callback_url_is_refused(client_a, no_private):
    body = {
        "to": "+8613812345678",
        "signature": "Any",
        "template": "ANY",
        "params": {},
        "callback_url": "http://169.254.169.254/latest/",
    }
    response = client_a.post("/api/v1/messages", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_callback_url"


def test_an_internal_webhook_stored_earlier_is_refused_when_called(tenant_a, no_private):
    """Checked again at call time: a URL saved before the check (or whose DNS changed) is not
    posted to; the alert reports it blocked instead of retrying."""
    account = billing.account_for(tenant=tenant_a) if hasattr(billing, "account_for") else None
    account = account or Account.objects.get(tenant=tenant_a)
    Account.objects.filter(pk=account.pk).update(alert_webhook_url="http://127.0.0.1:9/")
    sent = billing.notify_low_balance(account_id=account.pk, balance=1, threshold=2)
    assert sent["webhook"] == "blocked"


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str]
    redirect_to = ""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).hits.append(self.path)
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
        else:
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _server(redirect_to: str = ""):
    handler = type("H", (_Recorder,), {"hits": [], "redirect_to": redirect_to})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def test_redirects_are_not_followed(settings):
    """A public receiver that answers 302 to an internal address gets no second request sent."""
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True  # the receivers here are local test servers
    inner, inner_handler = _server()
    outer, outer_handler = _server(redirect_to=f"http://127.0.0.1:{inner.server_port}/secret")
    try:
        status = webhooks.post(
            f"http://127.0.0.1:{outer.server_port}/hook",
            body=b"{}",
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
    finally:
        inner.shutdown()
        outer.shutdown()
    assert status == 302
    assert outer_handler.hits == ["/hook"]
    assert inner_handler.hits == []


def test_webhook_secret_is_encrypted_at_rest_and_usable(client_a, tenant_a, settings):
    """R-TEN-2: the stored value is not the secret the tenant is shown; the platform can still sign."""
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True
    response = client_a.put(
        "/api/v1/billing/alert", {"threshold": 1000, "webhook_url": "http://127.0.0.1:9/hook"}, format="json"
    )
    assert response.status_code == 200, response.content
    shown = response.json()["webhook_secret"]
    stored = Account.objects.get(tenant=tenant_a).alert_webhook_secret
    assert len(shown) == 64
    assert shown not in stored
    assert billing.webhook_secret_of(Account.objects.get(tenant=tenant_a)) == shown
