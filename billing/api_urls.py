from django.urls import path

from . import api

urlpatterns = [
    path("billing/balance", api.BalanceView.as_view(), name="billing-balance"),
    path("billing/prices", api.PricesView.as_view(), name="billing-prices"),
    path("billing/alert", api.AlertView.as_view(), name="billing-alert"),
    path("billing/ledger", api.LedgerView.as_view(), name="billing-ledger"),
    path("billing/statements/<str:month>", api.StatementView.as_view(), name="billing-statement"),
    path("billing/statements/<str:month>/messages", api.BilledMessagesView.as_view(), name="billing-bill"),
    path("billing/reconciliation/<str:month>", api.ReconciliationView.as_view(), name="billing-reconciliation"),
    path("billing/disputes", api.DisputesView.as_view(), name="billing-disputes"),
    path("billing/invoices", api.InvoicesView.as_view(), name="billing-invoices"),
]
