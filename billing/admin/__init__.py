"""Finance admin, one module per concern: accounts and their operations, the ledger and what was
booked, prices and plans, disputes and dormancy cases. Importing them here is what registers every
ModelAdmin when Django's admin autodiscovery imports `billing.admin`.

Every write calls a service (which records the operation, R-AUD-3); every view checks a custom
permission granted in billing/roles.py.
"""

from . import accounts, cases, ledger, prices  # noqa: F401
