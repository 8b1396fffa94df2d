"""Log filters for people reading the console (issue 14, `make run`).

An expected refusal (a 4xx: a bad key, a forbidden admin page) is one line, not a traceback:
Django logs PermissionDenied / SuspiciousOperation with the exception attached; the status code
already says what happened. Server errors (5xx) keep their traceback.
"""

import logging


class RefusalWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
