"""Entry point for dramatiq workers: `dramatiq smsplatform.worker` (make run starts one).

Sets Django up, then imports every app's actors module so the worker knows all actors.
"""

import os
from importlib import import_module

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")
django.setup()

import dramatiq  # noqa: E402
from django.apps import apps  # noqa: E402

from smsplatform.metrics import install_worker_metrics  # noqa: E402

for config in apps.get_app_configs():
    try:
        import_module(f"{config.name}.actors")
    except ModuleNotFoundError as exc:
        if exc.name != f"{config.name}.actors":
            raise

# Queue metrics (dramatiq's Prometheus middleware) when PROMETHEUS_MULTIPROC_DIR is set.
install_worker_metrics(dramatiq.get_broker())
