"""Run the SMPP SMSC simulator in the foreground (R-DLV-3 local development / demos / fault runs).

    manage.py smsc_simulator --host 127.0.0.1 --port 2775 --system-id demo --password demo \
        --receipt-delay 0.5 --delivered-ratio 0.95

Carrier-like faults (docs/smpp.md, "The SMSC simulator"), e.g. the strict carrier of issue 20:
    --max-binds 2 --window-limit 10 --response-delay 0.05 --data-sm-receipts 0.3 \
        --receipt-id-format dec --hang-at-submit 500 --hang-seconds 60 --unbind-at-submit 800
While it runs: SIGUSR1 hangs it for --hang-seconds (default 60), SIGUSR2 sends unbind on every bind.
"""

import json
import signal
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from delivery.simulator.server import SmscSimulator

ID_FORMATS = sorted(SmscSimulator.ID_FORMATS)


def _int_set(value: str) -> set[int]:
    return {int(v) for v in value.split(",") if v.strip()}


def build_simulator(opts: dict) -> SmscSimulator:
    """The simulator the options describe (not started)."""
    credentials = {opts["system_id"]: opts["password"]}
    for item in opts["credentials"]:
        sid, sep, pwd = item.partition(":")
        if not sep:
            raise CommandError(f"--credentials expects SYSTEM_ID:PASSWORD, got {item!r}")
        credentials[sid] = pwd
    bind_limits = {}
    for item in opts["bind_limit"]:
        sid, sep, limit = item.partition(":")
        if not sep or not limit.isdigit():
            raise CommandError(f"--bind-limit expects SYSTEM_ID:N, got {item!r}")
        bind_limits[sid] = int(limit)
    delivered = max(0.0, min(1.0, opts["delivered_ratio"]))
    outcomes = {"DELIVRD": delivered}
    failures = {}
    for item in filter(None, opts["failure_stats"].split(",")):
        stat, _, weight = item.partition(":")
        failures[stat.strip().upper()] = float(weight or 1)
    total = sum(failures.values()) or 1.0
    for stat, weight in failures.items():
        outcomes[stat] = outcomes.get(stat, 0.0) + (1 - delivered) * weight / total
    try:
        return SmscSimulator(
            opts["host"],
            opts["port"],
            credentials=credentials,
            receipt_delay=opts["receipt_delay"],
            outcomes={k: v for k, v in outcomes.items() if v > 0} or {"DELIVRD": 1.0},
            throttle_every=opts["throttle_every"],
            throttle_parts=_int_set(opts["throttle_parts"]),
            throttle_part_times=opts["throttle_part_times"],
            window_limit=opts["window_limit"],
            disconnect_every=opts["disconnect_every"],
            disconnect_after=opts["disconnect_after"],
            drop_after_accept_every=opts["drop_after_accept_every"],
            drop_after_accept_part=opts["drop_after_accept_part"],
            drop_after_accept_times=opts["drop_after_accept_times"],
            tps_cap=opts["tps_cap"],
            receipt_id_format=opts["receipt_id_format"],
            submit_id_format=opts["submit_id_format"],
            receipt_tlvs=opts["receipt_tlvs"],
            receipt_timezone=opts["receipt_timezone"],
            data_sm_receipts=opts["data_sm_receipts"],
            mo_as_data_sm=opts["mo_as_data_sm"],
            receipt_on_other_bind=opts["receipt_on_other_bind"],
            duplicate_receipts=opts["duplicate_receipts"],
            receipt_before_response=opts["receipt_before_response"],
            response_delay=opts["response_delay"],
            max_binds=opts["max_binds"],
            bind_limits=bind_limits,
            hang_at_submit=opts["hang_at_submit"],
            hang_seconds=opts["hang_seconds"],
            unbind_at_submit=opts["unbind_at_submit"],
            unbind_flush_responses=not opts["unbind_drop_responses"],
            unbind_timeout=opts["unbind_timeout"],
            access_codes=set(opts["access_codes"]),
            seed=opts["seed"],
        )
    except (ValueError, LookupError) as exc:  # bad id format, unknown time zone
        raise CommandError(str(exc)) from exc


class Command(BaseCommand):
    help = (
        "Run the SMPP 3.4 SMSC simulator (receipts, MO, carrier fault switches) until Ctrl-C. "
        "SIGUSR1: hang for --hang-seconds; SIGUSR2: unbind every bind."
    )

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
        ids = parser.add_argument_group("message ids and receipts")
        ids.add_argument(
            "--receipt-id-format",
            choices=ID_FORMATS,
            default="hex",
            help="receipt text id: hex (upper, padded), dec (padded), hex_lower, dec_plain",
        )
        ids.add_argument("--submit-id-format", choices=ID_FORMATS, default="hex", help="submit_sm_resp id, as above")
        ids.add_argument(
            "--receipt-tlvs",
            action="store_true",
            help="add receipted_message_id (id as in submit_sm_resp) and message_state; default text only",
        )
        ids.add_argument(
            "--receipt-timezone", default="UTC", metavar="ZONE", help="zone of receipt dates, e.g. Asia/Shanghai"
        )
        ids.add_argument(
            "--data-sm-receipts",
            type=float,
            default=0.0,
            metavar="SHARE",
            help="share of receipts sent as data_sm (1 = all); the ESME must answer data_sm_resp",
        )
        ids.add_argument("--mo-as-data-sm", action="store_true", help="injected MO as data_sm")
        ids.add_argument("--receipt-on-other-bind", action="store_true")
        ids.add_argument("--duplicate-receipts", type=float, default=0.0)
        ids.add_argument("--receipt-before-response", action="store_true")
        ids.add_argument(
            "--access-codes",
            nargs="*",
            default=[],
            metavar="NUMBER",
            help="bare service numbers (MO without extension)",
        )
        faults = parser.add_argument_group("throttling, window, drops")
        faults.add_argument("--response-delay", type=float, default=0.0, help="seconds before each submit_sm_resp")
        faults.add_argument("--throttle-every", type=int, default=0, help="every Nth submit_sm gets 0x58")
        faults.add_argument(
            "--throttle-parts",
            default="",
            metavar="SEQ,...",
            help="concatenated parts with these sequence numbers get 0x58 (then a resend is accepted)",
        )
        faults.add_argument("--throttle-part-times", type=int, default=1, help="how often each such part is refused")
        faults.add_argument("--tps-cap", type=float, default=None, help="0x58 above this rate per account")
        faults.add_argument(
            "--window-limit",
            type=int,
            default=0,
            help="a submit_sm beyond N unanswered on one bind gets 0x14 (use with --response-delay)",
        )
        faults.add_argument("--disconnect-every", type=int, default=0, help="the Nth submit_sm is lost, link drops")
        faults.add_argument("--disconnect-after", type=float, default=0.0, help="drop every link after S seconds")
        faults.add_argument(
            "--drop-after-accept-every",
            type=int,
            default=0,
            help="every Nth accepted submit: accepted (receipt later), link dropped before its submit_sm_resp",
        )
        faults.add_argument(
            "--drop-after-accept-part", type=int, default=0, help="count only concatenated parts with this seq"
        )
        faults.add_argument("--drop-after-accept-times", type=int, default=0, help="at most N such drops (0: no limit)")
        sessions = parser.add_argument_group("binds, hang, unbind")
        sessions.add_argument(
            "--max-binds", type=int, default=0, help="binds per account (all bind types); the next gets ESME_RBINDFAIL"
        )
        sessions.add_argument(
            "--bind-limit", nargs="*", default=[], metavar="SYSTEM_ID:N", help="per-account bind limit"
        )
        sessions.add_argument(
            "--hang-at-submit", type=int, default=0, help="at the Nth submit_sm answer nothing for --hang-seconds"
        )
        sessions.add_argument("--hang-seconds", type=float, default=0.0, help="length of a hang (SIGUSR1: 60 if 0)")
        sessions.add_argument("--unbind-at-submit", type=int, default=0, help="send unbind after the Nth submit_sm")
        sessions.add_argument(
            "--unbind-drop-responses",
            action="store_true",
            help="on our unbind, forget answers owed (default: write them before closing)",
        )
        sessions.add_argument("--unbind-timeout", type=float, default=5.0, help="close S after unbind without resp")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--stats-every", type=float, default=10.0, help="print counters every N seconds (0: never)")
        parser.add_argument(
            "--stats-json",
            default=None,
            metavar="FILE",
            help="write all counters (per-second submits per account, peak binds, ...) as JSON with each print and at exit",
        )

    def handle(self, *args, **opts):
        sim = build_simulator(opts)
        sim.start()
        signal.signal(signal.SIGUSR1, lambda *_: sim.hang(opts["hang_seconds"] or 60.0))
        signal.signal(signal.SIGUSR2, lambda *_: sim.unbind())
        self.stdout.write(
            f"SMSC simulator listening on {opts['host']}:{sim.port} "
            f"(accounts: {', '.join(sim.credentials)}; outcomes: {sim.outcomes})"
        )
        last = time.monotonic()
        try:
            while True:
                time.sleep(0.5)
                if opts["stats_every"] and time.monotonic() - last >= opts["stats_every"]:
                    last = time.monotonic()
                    self.stdout.write(
                        f"submits={sim.submits_received} accepted={len(sim.submitted)} receipts={sim.receipts_sent} "
                        f"mo={sim.mo_sent} throttled={sim.throttled} window_refusals={sim.window_refusals} "
                        f"disconnects={sim.disconnects} drops_after_accept={sim.drops_after_accept} "
                        f"binds={sim.binds} bind_failures={sim.bind_failures} hangs={sim.hangs} "
                        f"unbinds_sent={sim.unbinds_sent}"
                    )
                    self._write_stats(sim, opts)
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
            self._write_stats(sim, opts)
            self.stdout.write("SMSC simulator stopped")

    @staticmethod
    def _write_stats(sim: SmscSimulator, opts: dict) -> None:
        if opts["stats_json"]:
            path = Path(opts["stats_json"])
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(json.dumps(sim.stats(), indent=1))
            tmp.replace(path)  # readers never see half a file
