"""Admin login lockout (django-axes): by the (username, IP) pair, with a ceiling per IP.

Five bad passwords for one user from one address lock that pair only: the user still logs in
from elsewhere, and colleagues behind the same address are not locked with them. One address
trying many usernames is stopped once its failures across all of them reach
AXES_IP_FAILURE_LIMIT. Both reset after AXES_COOLOFF_TIME (docs/operations.md).
"""

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_ip_address, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone


class PairThenIpHandler(AxesDatabaseHandler):
    def is_locked(self, request, credentials=None) -> bool:
        if super().is_locked(request, credentials):
            return True  # the (username, IP) pair (AXES_LOCKOUT_PARAMETERS)
        ip = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
        if not ip:
            return False
        attempts = AccessAttempt.objects.filter(ip_address=ip)
        cool_off = get_cool_off(request)
        if cool_off:
            attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
        failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
        return failures >= settings.AXES_IP_FAILURE_LIMIT
