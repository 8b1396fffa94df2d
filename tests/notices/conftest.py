"""Fixtures for issue 18 (notices, holds, terms, qualifications): a real local webhook receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tenants.services import Actor

SYSTEM = Actor.system("tests")


class _Receiver(BaseHTTPRequestHandler):
    received: list = []
    status_code = 204

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).status_code)
        self.end_headers()

    def log_message(self, *args):
        pass


class Receiver:
    def __init__(self, server, handler):
        self.server, self.handler = server, handler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    @property
    def received(self) -> list:
        return self.handler.received

    def json_bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def answer(self, status_code: int) -> None:
        self.handler.status_code = status_code


@pytest.fixture
def webhook(settings):
    settings.DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS = True
    handler = type("Handler", (_Receiver,), {"received": [], "status_code": 204})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver(server, handler)
    server.shutdown()
    server.server_close()


def set_callback_url(tenant, url: str) -> None:
    from delivery.callbacks import update_callback_settings

    update_callback_settings(tenant=tenant, callback_url=url, actor=SYSTEM)
