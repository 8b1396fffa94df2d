"""What every admin module needs from tenants, without importing tenants.admin (which imports the
issue-18 admin modules at its end: a circle otherwise)."""

from . import services


def admin_actor(request) -> services.Actor:
    """The operator behind an admin request, for the operation trail (R-AUD-3)."""
    return services.Actor.for_user(request.user, ip_address=request.META.get("REMOTE_ADDR"))
