"""Jobs enqueued by name (smsplatform.jobs) reach a declared actor on its own queue: services never
import actors modules (import circles), so a misspelt or renamed actor would otherwise drop work
silently. Every `jobs.enqueue("name", ..., queue="q")` in app code, and billing's
`enqueue("name", ...)` (queue "billing"), is checked against the actors the worker declares."""

from __future__ import annotations

import ast
from importlib import import_module
from pathlib import Path

import dramatiq
import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
APPS = ("smsplatform", "tenants", "compliance", "billing", "delivery")
# Wrappers that fix the queue: module prefix → queue.
WRAPPERS = {"billing": "billing"}


def _literal(node: ast.expr) -> str:
    """A queue name as written: a constant, or an f-string's literal start ("channel." for
    f"channel.{id}": per-channel queues share the actor's declared prefix)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return node.values[0].value + "*"
    raise AssertionError(f"queue must be a literal or an f-string, not {ast.dump(node)}")


def _enqueued() -> list[tuple[str, str, str]]:
    """(where, actor name, queue) of every enqueue by name with a literal actor name."""
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name != "enqueue" or not isinstance(node.args[0].value, str):
                    continue
                queue = next((_literal(k.value) for k in node.keywords if k.arg == "queue"), WRAPPERS.get(app))
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.append((where, node.args[0].value, queue))
    return found


def test_every_job_enqueued_by_name_is_a_declared_actor_on_its_queue():
    for config in apps.get_app_configs():  # what smsplatform.worker imports
        try:
            import_module(f"{config.name}.actors")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.actors":
                raise
    broker = dramatiq.get_broker()
    enqueued = _enqueued()
    assert any(name == "send_notice_email_job" for _, name, _ in enqueued)  # the scan finds calls
    for where, name, queue in enqueued:
        try:
            actor = broker.get_actor(name)
        except dramatiq.errors.ActorNotFound:
            pytest.fail(f"{where}: no actor named {name!r}")
        if queue.endswith("*"):  # a per-channel queue: same family as the actor's own
            assert actor.queue_name.startswith(queue[:-1]), f"{where}: {name} runs on {actor.queue_name!r}, not {queue}"
        else:
            assert actor.queue_name == queue, f"{where}: {name} runs on {actor.queue_name!r}, enqueued on {queue!r}"


def test_every_actor_is_named_for_a_job():
    """Issue 19: an actor's name says it is a job (`*_job`), so it never shares a service's name."""
    broker = dramatiq.get_broker()
    modules = [f"{app}.actors" for app in APPS if (ROOT / app / "actors.py").exists()]
    for module in modules:
        import_module(module)
    ours = [name for name in broker.get_declared_actors() if broker.get_actor(name).fn.__module__ in modules]
    assert len(ours) > 20  # the scan sees the apps' actors
    assert [name for name in ours if not name.endswith("_job")] == []
