"""The audit periodic jobs are scheduled, and customer API writes keep the caller's IP (R-AUD-3)."""

import re
from pathlib import Path

from smsplatform.periodic import collect_schedule


def test_purge_and_erasure_jobs_are_scheduled_R_AUD_1_R_AUD_4():
    names = {job.actor.actor_name for job in collect_schedule()}
    assert {"purge_send_log_job", "process_due_erasures_job"} <= names


def test_customer_api_modules_take_the_actor_with_ip_R_AUD_3():
    """Every customer API write records its IP through tenants.authentication.caller_actor;
    building an Actor from the key alone (without REMOTE_ADDR) is not allowed in API modules."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    modules = [*root.glob("*/api.py"), *root.glob("*/*_api.py"), *root.glob("*/api/*.py")]
    assert {"tenants/api.py", "delivery/stats_api.py"} <= {str(m.relative_to(root)) for m in modules}
    for module in modules:
        text = module.read_text()
        if re.search(r"Actor\.for_api_key\(|request\.user\.actor\b", text):
            offenders.append(str(module.relative_to(root)))
    assert offenders == []
