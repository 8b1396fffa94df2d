"""Run the SMPP SMSC simulator in the foreground (R-DLV-3 local development / demos).

    manage.py smsc_simulator --host 127.0.0.1 --port 2775 --system-id demo --password demo \
        --receipt-delay 0.5 --delivered-ratio 0.95
"""

import time

from django.core.management.base import BaseCommand, CommandError

from delivery.simulator import SmscSimulator


class Command(BaseCommand):
    help = "Run the SMPP 3.4 SMSC simulator (receipts, MO, fault switches) until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2775)
        parser.add_argument("--system-id", default="demo")
        parser.add_argument("--password", default="demo")
        parser.add_argument("--credentials", nargs="*", default=[], metavar="SYSTEM_ID:PASSWORD", help="extra accounts")
        parser.add_argument("--receipt-delay", type=float, default=0.5)
        parser.add_argument(
            "--delivered-ratio",
            type=float,
            default=1.0,
            help="share of DELIVRD receipts; the rest follows --failure-stats",
        )
        parser.add_argument(
            "--failure-stats",
            default="UNDELIV:0.5,EXPIRED:0.3,REJECTD:0.2",
            help="how the non-delivered share is split, STAT:weight,...",
        )
        parser.add_argument("--receipt-id-format", choices=["hex", "dec"], default="hex")
        parser.add_argument("--submit-id-format", choices=["hex", "dec"], default="hex")
        parser.add_argument("--receipt-tlvs", action="store_true")
        parser.add_argument("--receipt-on-other-bind", action="store_true")
        parser.add_argument("--duplicate-receipts", type=float, default=0.0)
        parser.add_argument("--receipt-before-response", action="store_true")
        parser.add_argument("--response-delay", type=float, default=0.0)
        parser.add_argument("--throttle-every", type=int, default=0)
        parser.add_argument("--disconnect-every", type=int, default=0)
        parser.add_argument("--disconnect-after", type=float, default=0.0)
        parser.add_argument("--tps-cap", type=float, default=None)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--stats-every", type=float, default=10.0, help="print counters every N seconds (0: never)")

    def handle(self, *args, **opts):
        credentials = {opts["system_id"]: opts["password"]}
        for item in opts["credentials"]:
            sid, sep, pwd = item.partition(":")
            if not sep:
                raise CommandError(f"--credentials expects SYSTEM_ID:PASSWORD, got {item!r}")
            credentials[sid] = pwd
        delivered = max(0.0, min(1.0, opts["delivered_ratio"]))
        outcomes = {"DELIVRD": delivered}
        failures = {}
        for item in filter(None, opts["failure_stats"].split(",")):
            stat, _, weight = item.partition(":")
            failures[stat.strip().upper()] = float(weight or 1)
        total = sum(failures.values()) or 1.0
        for stat, weight in failures.items():
            outcomes[stat] = outcomes.get(stat, 0.0) + (1 - delivered) * weight / total
        sim = SmscSimulator(
            opts["host"],
            opts["port"],
            credentials=credentials,
            receipt_delay=opts["receipt_delay"],
            outcomes={k: v for k, v in outcomes.items() if v > 0} or {"DELIVRD": 1.0},
            throttle_every=opts["throttle_every"],
            disconnect_every=opts["disconnect_every"],
            disconnect_after=opts["disconnect_after"],
            tps_cap=opts["tps_cap"],
            receipt_id_format=opts["receipt_id_format"],
            submit_id_format=opts["submit_id_format"],
            receipt_tlvs=opts["receipt_tlvs"],
            receipt_on_other_bind=opts["receipt_on_other_bind"],
            duplicate_receipts=opts["duplicate_receipts"],
            receipt_before_response=opts["receipt_before_response"],
            response_delay=opts["response_delay"],
            seed=opts["seed"],
        )
        sim.start()
        self.stdout.write(
            f"SMSC simulator listening on {opts['host']}:{sim.port} "
            f"(accounts: {', '.join(credentials)}; outcomes: {sim.outcomes})"
        )
        last = time.monotonic()
        try:
            while True:
                time.sleep(0.5)
                if opts["stats_every"] and time.monotonic() - last >= opts["stats_every"]:
                    last = time.monotonic()
                    self.stdout.write(
                        f"submits={sim.submits_received} accepted={len(sim.submitted)} receipts={sim.receipts_sent} "
                        f"mo={sim.mo_sent} throttled={sim.throttled} disconnects={sim.disconnects} "
                        f"binds={sim.binds} bind_failures={sim.bind_failures}"
                    )
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
            self.stdout.write("SMSC simulator stopped")
