"""`make run` for a person at a keyboard (issue 14 item 7): the demo admin password and API key
survive restarts (kept under var/, printed again), and a lost or revoked key is replaced."""

import io
import json
import stat

import pytest
from django.contrib.auth.models import User

from tenants import services
from tenants.management.commands import bootstrap


@pytest.fixture
def var(tmp_path, monkeypatch):
    import smsplatform.embedded

    monkeypatch.setattr(smsplatform.embedded, "VAR", tmp_path)
    return tmp_path


def run_demo() -> str:
    command = bootstrap.Command(stdout=io.StringIO())
    command.make_demo()
    return command.stdout.getvalue()


def test_a_second_run_prints_the_same_password_and_key_and_both_still_work_R_TEN_2(db, var):
    first = run_demo()
    second = run_demo()
    assert first == second
    saved = json.loads((var / "demo-credentials.json").read_text())
    assert stat.S_IMODE((var / "demo-credentials.json").stat().st_mode) == 0o600
    assert User.objects.get(username="admin").check_password(saved["admin_password"])
    key = services.authenticate_plain(access_key_id=saved["access_key_id"], secret=saved["access_key_secret"])
    assert key.revoked_at is None
    assert saved["admin_password"] in second


def test_a_revoked_demo_key_is_replaced_and_saved(db, var):
    run_demo()
    saved = json.loads((var / "demo-credentials.json").read_text())
    key = services.authenticate_plain(access_key_id=saved["access_key_id"], secret=saved["access_key_secret"])
    services.revoke_api_key(key=key, actor=services.Actor.system("t"), reason="test")
    run_demo()
    renewed = json.loads((var / "demo-credentials.json").read_text())
    assert renewed["access_key_id"] != saved["access_key_id"]
    assert services.authenticate_plain(access_key_id=renewed["access_key_id"], secret=renewed["access_key_secret"])
    assert renewed["admin_password"] == saved["admin_password"]


def test_make_stop_says_when_nothing_was_running(tmp_path, monkeypatch, capsys):
    import smsplatform.embedded as embedded

    monkeypatch.setattr(embedded, "REDIS_DIR", tmp_path / "redis")
    monkeypatch.setattr(embedded, "PG_DATA", tmp_path / "pgdata")
    embedded.main(["embedded", "stop"])
    assert "nothing to stop" in capsys.readouterr().out
