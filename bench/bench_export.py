"""Send-log export: 1,000,000 rows to CSV through the real export path (R-AUD-2).

Rows are made fast with INSERT … SELECT generate_series in a scratch tenant schema (reused across
runs, emptied first), each message with one part (carrier id) and two status events, then
exported with delivery.sendlog.export (keyset chunks across the schema, SendLogResource, masking,
neutralising, csv) exactly as the background actor does. Memory: peak RSS of this process
(resource.getrusage) — the process includes Django itself.

    DATABASE_URL=... .venv/bin/python bench/bench_export.py [rows]
"""

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from _setup import print_table, setup_django

setup_django()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from delivery.sendlog.export import SendLogFilters, SendLogResource, file_sha256, iter_send_log, write_export  # noqa: E402
from smsplatform.tenancy import ensure_template_schema  # noqa: E402
from tenants import registration, services  # noqa: E402
from tenants.management.commands.bootstrap import ensure_public_tenant  # noqa: E402
from tenants.models import Tenant  # noqa: E402

SCHEMA = "bench_export"

FILL = """
TRUNCATE delivery_statusevent, delivery_messagepart, delivery_message, delivery_sendrequest RESTART IDENTITY CASCADE;
INSERT INTO delivery_sendrequest (kind, client_ref, body_hash, response_status, response_body, total, accepted, rejected,
                                  created_at)
VALUES ('batch', NULL, repeat('0', 64), 202, '{}', %(n)s, %(n)s, 0, now());
INSERT INTO delivery_message (request_id, client_ref, recipient, country, carrier, province, signature, template,
    signature_id, template_id, template_version, message_type, params, content, encoding, segments, unit_price,
    price_id, amount, hold_id, status, status_at, reason, detail, send_at, callback_url, channel_id, tried_channels,
    claim_token, submitting_at, submit_attempts, submitted_at, done_at, error_code, unknown_parts, created_at)
SELECT 1, 'ref-' || i, '+86138' || lpad(i::text, 8, '0'), 'CN', 'china_mobile', '', 'Acme', 'TPL_8F2K1',
    1, 1, 2, 'verification', jsonb_build_object('code', lpad((i %% 1000000)::text, 6, '0')),
    '【Acme】您的验证码是' || lpad((i %% 1000000)::text, 6, '0') || '，5分钟内有效。', 'ucs2', 1, 35000,
    1, 35000, i, CASE WHEN i %% 10 = 0 THEN 'undelivered' ELSE 'delivered' END, t + interval '6 seconds', '', '', NULL,
    '', 1 + i %% 3, '[]', '', NULL, 1, t + interval '1 second', t + interval '6 seconds', '', '[]', t
FROM (SELECT i, now() - (i || ' seconds')::interval AS t FROM generate_series(1, %(n)s) AS i) AS g;
INSERT INTO delivery_messagepart (message_id, part, parts, carrier_message_id, smsc_message_id, submitted_at, status, stat,
    err, done_at)
SELECT id, 1, 1, to_hex(id * 7919), to_hex(id * 7919), submitted_at, status, 'DELIVRD', '000', done_at FROM delivery_message;
INSERT INTO delivery_statusevent (message_id, from_status, to_status, at, detail)
SELECT id, 'accepted', 'submitted', submitted_at, '' FROM delivery_message
UNION ALL SELECT id, 'submitted', status, done_at, '' FROM delivery_message;
ANALYZE delivery_message; ANALYZE delivery_messagepart; ANALYZE delivery_statusevent;
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def scratch_tenant() -> Tenant:
    tenant = Tenant.objects.filter(schema_name=SCHEMA).first()
    if tenant is None:
        tenant = registration.register_tenant(
            name="Bench export scratch",
            licence_number=f"BENCHEXPORT{int(time.time())}",
            contact_name="b",
            contact_phone="+8613800000000",
            contact_email="b@example.com",
            actor=services.Actor.system("bench"),
            activate=True,
            schema_name=SCHEMA,
        )
    return tenant


def main(rows: int) -> None:
    call_command("migrate_schemas", interactive=False, verbosity=0)
    ensure_template_schema()
    ensure_public_tenant()
    tenant = scratch_tenant()

    started = time.perf_counter()
    with schema_context(SCHEMA), connection.cursor() as cursor:
        cursor.execute(FILL, {"n": rows})
    fill_seconds = time.perf_counter() - started
    connection.set_schema_to_public()

    baseline = rss_mb()
    path = Path(tempfile.mkdtemp()) / "bench_export.csv"
    started = time.perf_counter()
    count = write_export(
        rows=iter_send_log(filters=SendLogFilters.build(tenant_ids=[tenant.pk])),
        resource=SendLogResource(full_numbers=False),
        fmt="csv",
        path=path,
    )
    export_seconds = time.perf_counter() - started
    started = time.perf_counter()
    file_sha256(path)
    hash_seconds = time.perf_counter() - started
    peak = rss_mb()
    size_mb = path.stat().st_size / 1e6
    path.unlink()

    print_table(
        f"Send-log export to CSV, {rows:,} rows (masked, neutralised, with carrier ids and status history)",
        [
            ("rows written", f"{count:,}", "rows", f"= {rows:,}"),
            ("generate rows (INSERT … SELECT generate_series)", f"{fill_seconds:.1f}", "s", "-"),
            ("export time", f"{export_seconds:.1f}", "s", "≤ 60 s"),
            ("export rate", f"{count / export_seconds:,.0f}", "rows/s", "≥ 16,667 rows/s"),
            ("SHA-256 of the file", f"{hash_seconds:.2f}", "s", "-"),
            ("file size", f"{size_mb:.0f}", "MB", "-"),
            ("peak RSS before export (Django loaded)", f"{baseline:.0f}", "MB", "-"),
            ("peak RSS of the process", f"{peak:.0f}", "MB", "≤ 300 MB"),
            (
                "chunk size (AUDIT_EXPORT_CHUNK_ROWS)",
                f"{os.environ.get('AUDIT_EXPORT_CHUNK_ROWS', '5000')}",
                "rows",
                "-",
            ),
        ],
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
