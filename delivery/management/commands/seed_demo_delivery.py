"""Demo data for `make run`: a channel to the local simulator, a route, prices, an approved
signature + template for the demo tenant, a tenant number and a top-up — each created through
the owning app's services, and only when missing (safe to run on every start)."""

from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing import services as billing
from billing.models import Price
from compliance import services as compliance
from compliance.models import ReviewStatus, Signature, Template
from delivery import channels
from delivery.models import Channel, Route, TenantNumber
from tenants.management.commands.bootstrap import DEMO_LICENCE
from tenants.models import Tenant
from tenants.services import Actor

DEMO_SIGNATURE = "DemoShop"
DEMO_TYPES = ("verification", "notification", "marketing")
DEMO_PRICE = 35_000  # 0.035 CNY per segment
DEMO_TOPUP = 100_000_000  # 100 CNY


class Command(BaseCommand):
    help = (
        "Create the demo channel (simulator at 127.0.0.1:2775, demo/demo), route, prices, signature, template, top-up."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2775)

    def handle(self, *args, **options):
        actor = Actor.system("seed_demo_delivery")
        tenant = Tenant.objects.filter(licence_number=DEMO_LICENCE).first()
        if tenant is None:
            raise CommandError("No demo tenant: run `manage.py bootstrap --demo` first.")
        channel = Channel.objects.filter(name="demo-simulator").first()
        if channel is None:
            channel = channels.create_channel(
                actor=actor,
                name="demo-simulator",
                host=options["host"],
                port=options["port"],
                system_id="demo",
                password="demo",
                source_addr="10690",
                window_size=50,
                tps_limit=None,
                bind_count=4,
            )
            Route.objects.create(name="everything to the simulator", channel=channel, priority=100)
        if not TenantNumber.objects.filter(tenant=tenant).exists():
            channels.assign_tenant_number(tenant=tenant, extension="01", actor=actor)

        plan = billing.default_plan()
        starts = timezone.now() + timedelta(seconds=1)
        for message_type in DEMO_TYPES:
            if not Price.objects.filter(plan=plan, message_type=message_type, country="CN").exists():
                billing.announce_price(
                    plan=plan,
                    message_type=message_type,
                    country="CN",
                    unit_price=DEMO_PRICE,
                    effective_from=starts,
                    actor=actor,
                )

        if not Signature.objects.filter(tenant=tenant, text=DEMO_SIGNATURE, status=ReviewStatus.APPROVED).exists():
            signature = compliance.file_signature(
                tenant=tenant,
                text=DEMO_SIGNATURE,
                purpose="demo shop",
                actor=actor,
                proofs=[SimpleUploadedFile("demo-licence.pdf", b"%PDF-1.4 demo", content_type="application/pdf")],
            )
            compliance.approve_signature(signature=signature, actor=actor, reason="demo")
        template = Template.objects.filter(tenant=tenant, name="demo code", approved_version__isnull=False).first()
        if template is None:
            template = compliance.file_template(
                tenant=tenant,
                name="demo code",
                message_type="verification",
                body="Your code is ${code}.",
                variables={"code": {"kind": "code"}},
                actor=actor,
            )
            compliance.approve_template_version(version=template.versions.get(), actor=actor, reason="demo")
        billing.topup(
            tenant=tenant,
            amount=DEMO_TOPUP,
            actor=actor,
            idempotency_key=f"demo-topup:{tenant.pk}",
            reason="demo balance",
        )
        self.stdout.write(
            "\n".join(
                [
                    f"  Channel:  {channel.name} → {channel.host}:{channel.port} (system_id demo)",
                    f'  Send:     POST /api/v1/messages {{"to": "13800138000", "signature": "{DEMO_SIGNATURE}", '
                    f'"template": "{template.code}", "params": {{"code": "123456"}}}}',
                    "",
                ]
            )
        )
