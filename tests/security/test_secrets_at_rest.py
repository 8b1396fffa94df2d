"""No secret in clear in the database: dump it (pg_dump, as an attacker with a backup would) and
look for the secrets we just created (R-TEN-2)."""

import subprocess
from pathlib import Path

import pgserver
from django.contrib.auth.models import User
from django.db import connection

from tenants import services

from ..conftest import SYSTEM, create_tenant

# pgserver's pg_dump is PostgreSQL 16: it dumps the embedded server and older local ones alike.
PG_DUMP = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"


def dump_database() -> str:
    params = connection.settings_dict
    command = [str(PG_DUMP), "--data-only", "--no-owner", "-U", params["USER"] or "postgres", "-d", params["NAME"]]
    if params["HOST"]:
        command += ["-h", params["HOST"]]
    if params["PORT"]:
        command += ["-p", str(params["PORT"])]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout


def test_database_dump_holds_no_secret_in_clear(live_db):
    tenant = create_tenant("Dump Co.")
    key, secret = services.issue_api_key(tenant=tenant, actor=SYSTEM)
    password = "Admin-Passw0rd-in-dump-test"
    User.objects.create_user(f"dump-{key.access_key_id}", password=password)
    dump = dump_database()
    assert key.access_key_id in dump  # the dump does contain the committed rows …
    assert secret not in dump  # … but not the API secret
    assert password not in dump  # nor an operator's password


def test_database_dump_holds_no_channel_password_or_callback_secret(live_db):
    """The SMPP bind password (R-DLV-3) and the tenant's callback HMAC key (R-DLV-4) are stored
    encrypted: usable by the platform, absent in clear from a dump."""
    import secrets as pysecrets

    from delivery.callbacks import delivery_settings_for
    from delivery.channels import create_channel
    from delivery.models import Channel
    from smsplatform.crypto import decrypt_secret

    bind_password = f"Smpp-{pysecrets.token_hex(6)}"
    channel = create_channel(
        actor=SYSTEM,
        name=f"dump-{pysecrets.token_hex(4)}",
        host="127.0.0.1",
        port=2775,
        system_id="dumpsys",
        password=bind_password,
        source_addr="1069",
        enabled=False,
    )
    tenant = create_tenant("Dump Callback Co.")
    callback_secret = decrypt_secret(delivery_settings_for(tenant=tenant).callback_secret)
    try:
        assert decrypt_secret(Channel.objects.get(pk=channel.pk).password) == bind_password  # still usable
        dump = dump_database()
        assert channel.name in dump
        assert bind_password not in dump
        assert callback_secret not in dump
    finally:
        Channel.objects.filter(pk=channel.pk).delete()


def test_database_dump_holds_no_billing_webhook_secret(live_db, settings):
    """R-BIL-6/R-TEN-2: the low-balance webhook's HMAC key is encrypted at rest."""
    from billing import services as billing
    from billing.models import Account

    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True
    tenant = create_tenant("Dump Webhook Co.")
    billing.set_low_balance_alert(tenant=tenant, threshold=1000, actor=SYSTEM, webhook_url="http://127.0.0.1:9/h")
    account = Account.objects.get(tenant=tenant)
    secret = billing.webhook_secret_of(account)
    assert len(secret) == 64
    dump = dump_database()
    assert "127.0.0.1:9/h" in dump
    assert secret not in dump
