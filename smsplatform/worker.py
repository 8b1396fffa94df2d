"""Entry point for dramatiq workers: `dramatiq smsplatform.worker` (make run starts one).

Sets Django up, then imports every app's actors module so the worker knows all actors.
"""

import os
from importlib import import_module

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")
django.setup()

from django.apps import apps  # noqa: E402

for config in apps.get_app_configs():
    try:
        import_module(f"{config.name}.actors")
    except ModuleNotFoundError as exc:
        if exc.name != f"{config.name}.actors":
            raise
