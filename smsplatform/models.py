"""Platform-wide rows that belong to no app: the configuration version counters."""

from django.db import models


class ConfigVersion(models.Model):
    """One counter per kind of cached configuration (smsplatform/config_cache.py). Database
    triggers (migration 0001) bump it in the transaction that changes the configuration, so a
    process that reads the counters sees every committed change, whoever wrote it (service,
    admin, import, shell)."""

    kind = models.CharField(max_length=32, primary_key=True)
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.kind}@{self.version}"
