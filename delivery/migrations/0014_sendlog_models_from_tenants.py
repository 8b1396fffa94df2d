"""ExportJob and ErasureRequest join delivery (issue 19), on their existing tables.

State only for the models. Their content types are renamed tenants → delivery, so the permissions
(export_send_log, view_full_number, export_operation_records, view/add_… ) keep their rows and
every group and user keeps its grants under the new label (delivery.export_send_log …).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MOVED = ("exportjob", "erasurerequest")


def content_types_to_delivery(apps, schema_editor):
    _relabel(apps, schema_editor, old="tenants", new="delivery")


def content_types_to_tenants(apps, schema_editor):
    _relabel(apps, schema_editor, old="delivery", new="tenants")


def _relabel(apps, schema_editor, *, old: str, new: str) -> None:
    if schema_editor.connection.schema_name != "public":
        return  # content types live in public; tenant schemas run this migration too
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if ContentType.objects.filter(app_label=new, model=model).exists():
            continue  # already there (created by a post_migrate before this ran): nothing to move
        ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("delivery", "0013_query_sm"),
        ("tenants", "0008_sendlog_models_to_delivery"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ErasureRequest",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "number",
                            models.CharField(blank=True, help_text="cleared once the erasure is done", max_length=32),
                        ),
                        ("number_hash", models.CharField(db_index=True, max_length=64)),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("waiting", "Waiting for the retention minimum"),
                                    ("done", "Done (rows anonymised)"),
                                ],
                                default="waiting",
                                max_length=20,
                            ),
                        ),
                        (
                            "not_before",
                            models.DateTimeField(blank=True, help_text="younger rows wait until then", null=True),
                        ),
                        ("requested_by_label", models.CharField(max_length=200)),
                        ("reason", models.TextField(blank=True)),
                        ("rows_anonymised", models.PositiveBigIntegerField(default=0)),
                        (
                            "rows_held",
                            models.PositiveBigIntegerField(default=0, help_text="rows kept by a legal hold (R-AUD-5)"),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_processed_at", models.DateTimeField(blank=True, null=True)),
                        ("completed_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "tenant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="erasure_requests",
                                to="tenants.tenant",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "tenants_erasurerequest",
                        "ordering": ["-created_at", "-id"],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("state__in", ["waiting", "done"])), name="erasure_state_valid"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="ExportJob",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[("send_log", "Send log"), ("operation_records", "Operation records")],
                                default="send_log",
                                max_length=30,
                            ),
                        ),
                        (
                            "format",
                            models.CharField(
                                choices=[("csv", "CSV"), ("xlsx", "Excel (XLSX)"), ("json", "JSON")],
                                default="csv",
                                max_length=10,
                            ),
                        ),
                        ("filters", models.JSONField(blank=True, default=dict)),
                        (
                            "full_numbers",
                            models.BooleanField(
                                default=False, help_text="recipient numbers unmasked (view_full_number)"
                            ),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("queued", "Queued"),
                                    ("running", "Running"),
                                    ("done", "Done"),
                                    ("failed", "Failed"),
                                ],
                                default="queued",
                                max_length=20,
                            ),
                        ),
                        ("requested_by_label", models.CharField(max_length=200)),
                        ("ip_address", models.GenericIPAddressField(blank=True, null=True)),
                        ("reason", models.TextField(blank=True, help_text="the lawful request this export answers")),
                        ("background", models.BooleanField(default=False)),
                        ("estimated_rows", models.PositiveBigIntegerField(default=0)),
                        ("rows_written", models.PositiveBigIntegerField(default=0)),
                        ("file_name", models.CharField(blank=True, help_text="relative to MEDIA_ROOT", max_length=200)),
                        ("file_size", models.PositiveBigIntegerField(default=0)),
                        ("sha256", models.CharField(blank=True, max_length=64, verbose_name="SHA-256")),
                        ("error", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "requested_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="export_jobs",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "tenants_exportjob",
                        "ordering": ["-created_at", "-id"],
                        "permissions": [
                            ("export_send_log", "Can export send logs (R-AUD-2)"),
                            ("view_full_number", "Can see full recipient numbers in send logs and exports (R-AUD-2)"),
                            ("export_operation_records", "Can export the operation trail (R-AUD-3)"),
                        ],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("state__in", ["queued", "running", "done", "failed"])),
                                name="export_job_state_valid",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_delivery, content_types_to_tenants),
    ]
