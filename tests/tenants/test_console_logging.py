"""`make run` logs for a person (issue 14 item 7): each line once, an expected refusal without a
traceback, a server error with one."""

import logging

from django.core.exceptions import PermissionDenied

from smsplatform.logfilters import RefusalWithoutTraceback


def _record(status: int) -> logging.LogRecord:
    try:
        raise PermissionDenied("no")
    except PermissionDenied:
        import sys

        record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Forbidden", (), sys.exc_info())
    record.status_code = status
    return record


def test_a_refusal_is_logged_without_traceback():
    record = _record(403)
    assert RefusalWithoutTraceback().filter(record)
    assert record.exc_info is None
    assert "Traceback" not in logging.Formatter().format(record)


def test_a_server_error_keeps_its_traceback():
    record = _record(500)
    RefusalWithoutTraceback().filter(record)
    assert "Traceback" in logging.Formatter().format(record)


def test_django_log_lines_reach_the_console_once(settings):
    """Django's default `django` logger had its own console handler and propagated to root."""
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django").propagate
    assert settings.LOGGING["root"]["handlers"] == ["console"]
