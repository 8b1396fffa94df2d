"""Jobs enqueued by actor name (smsplatform.jobs.enqueue) name an actor the worker declares, on
that actor's own queue: a typo would otherwise drop the work silently (issue 19)."""

import ast
from importlib import import_module
from pathlib import Path

import dramatiq
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
APPS = ("smsplatform", "tenants", "compliance", "billing", "delivery")


def _declared_actors() -> dict[str, str]:
    for config in apps.get_app_configs():
        try:
            import_module(f"{config.name}.actors")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.actors":
                raise
    broker = dramatiq.get_broker()
    return {name: broker.get_actor(name).queue_name for name in broker.get_declared_actors()}


def _enqueue_calls():
    """(file, line, actor name, queue or None) for every enqueue("literal", …) call in app code."""
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                first = node.args[0]
                if name != "enqueue" or not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    continue
                queue = next((k.value.value for k in node.keywords if k.arg == "queue"), None)
                yield f"{path.relative_to(ROOT)}:{node.lineno}", first.value, queue


def test_every_job_sent_by_name_reaches_a_declared_actor_on_its_queue():
    declared = _declared_actors()
    calls = list(_enqueue_calls())
    assert calls, "no enqueue-by-name call found: the scan is broken"
    problems = [
        f"{where}: {actor!r} "
        + ("is not a declared actor" if actor not in declared else f"is on queue {declared[actor]!r}, not {queue!r}")
        for where, actor, queue in calls
        if actor not in declared or (queue is not None and declared[actor] != queue)
    ]
    assert not problems, "\n".join(problems)
