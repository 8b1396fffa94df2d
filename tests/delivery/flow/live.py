"""Helpers for the live tests (committed data, real dramatiq workers, real simulator sockets)."""

import hashlib
import hmac
import http.server
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

from django.db import connection
from django_tenants.utils import tenant_context

from delivery.callbacks import update_callback_settings
from delivery.channels import create_channel
from delivery.models import Channel, Message, Route
from tenants import services as tenant_services

from ...conftest import KeyedClient, create_tenant

ROOT = Path(__file__).resolve().parents[3]
SYSTEM = tenant_services.Actor.system("tests")


class CallbackEndpoint:
    """A real customer endpoint: http.server in a thread, recording every POST."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms-status"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, secret: str) -> list[dict]:
        """Bodies whose X-Signature verifies with `secret`."""
        out = []
        for headers, body in list(self.received):
            if hmac.compare_digest(
                headers.get("X-Signature", ""), hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            ):
                out.append(json.loads(body))
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def only_channel(*, port: int, system_id: str = "demo", password: str = "demo", **fields) -> Channel:
    """Live tests share committed data: disable every other channel, route everything here."""
    Channel.objects.update(enabled=False)
    channel = create_channel(
        actor=SYSTEM,
        name=f"live-{time.monotonic_ns()}",
        host="127.0.0.1",
        port=port,
        system_id=system_id,
        password=password,
        source_addr="10690",
        **fields,
    )
    Route.objects.create(name=f"all-{channel.pk}", channel=channel, priority=1)
    return channel


def live_tenant(name: str, *, callback_url: str = ""):
    tenant = create_tenant(name)
    key, secret = tenant_services.issue_api_key(tenant=tenant, actor=SYSTEM, label="live")
    connection.set_schema_to_public()
    if callback_url:
        update_callback_settings(tenant=tenant, callback_url=callback_url, actor=SYSTEM)
    return tenant, KeyedClient(tenant, key.access_key_id, secret)


def wait_for(predicate, *, timeout: float = 30.0, every: float = 0.1, what: str = "condition", describe=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}" + (f": {describe()}" if describe else ""))


def statuses(tenant, ids=None) -> dict[int, str]:
    with tenant_context(tenant):
        rows = Message.objects.all() if ids is None else Message.objects.filter(pk__in=ids)
        result = dict(rows.values_list("pk", "status"))
    connection.set_schema_to_public()
    return result


def test_database_url(*, via: str | None = None) -> str:  # noqa: PT028 - a helper (__test__ = False)
    """DATABASE_URL of the test database, for child processes. The host may be a socket
    directory (the embedded PostgreSQL of `make bench`): quoted, and no port when none is set.
    `via`: another "host:port" to reach it through (a test's proxy)."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{via or quote(db['HOST'] or '', safe='') + port}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test (pytest collects test_* names)


def worker_process(*, threads: int = 2, log=None, env: dict | None = None) -> subprocess.Popen:
    """`dramatiq smsplatform.worker` as a child process on the test database."""
    full_env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DELIVERY_RECEIPT_LINGER_SECONDS": "0.3",
        "DELIVERY_RETRY_BACKOFF_MS": "100",
        **(env or {}),
    }
    command = [str(ROOT / ".venv" / "bin" / "dramatiq"), "smsplatform.worker", "-p", "1", "-t", str(threads)]
    # Own process group: dramatiq's main process forks the worker process; signals go to both.
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=full_env,
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
        start_new_session=True,
    )


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the dramatiq main process and its worker processes (the whole group)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def wait_all_delivered(tenant, ids, *, timeout: float = 60.0, sweep: bool = False) -> None:
    """Wait until every message is delivered; with `sweep`, run the unknown-submission sweep
    (what the scheduler does every 30 s) once a second meanwhile."""
    from collections import Counter

    from delivery import sweeps

    deadline = time.monotonic() + timeout
    next_sweep = time.monotonic() + 1
    while time.monotonic() < deadline:
        states = statuses(tenant, ids)
        if set(states.values()) == {"delivered"}:
            return
        if sweep and time.monotonic() >= next_sweep:
            sweeps.reconcile_unknown_submissions()
            connection.set_schema_to_public()
            next_sweep = time.monotonic() + 1
        time.sleep(0.1)
    with tenant_context(tenant):
        stuck = list(
            Message.objects.filter(pk__in=ids)
            .exclude(status="delivered")
            .values("pk", "status", "submit_attempts", "reason", "detail", "tried_channels")[:5]
        )
    connection.set_schema_to_public()
    raise AssertionError(f"not all delivered: {Counter(states.values())}; e.g. {stuck}")
