"""Operator admin for compliance, one module per concern. Importing them here is what registers every
ModelAdmin when Django's admin autodiscovery imports `compliance.admin`."""

from . import content, enforcement, filings, limits, opt_outs  # noqa: F401
