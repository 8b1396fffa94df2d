"""Request parsers for the API."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser that also refuses lone UTF-16 surrogates ("\\ud800"): JSON text may
    escape one, but no UTF-8 string can hold it, so it used to fail later — in PostgreSQL or
    while writing the response — as a 500 instead of a 400 malformed_request."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:  # JSON nested deeper than Python's stack
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.") from exc
        if _too_deep(data):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        if _has_lone_surrogate(data):
            raise ParseError("JSON parse error - the body holds a lone UTF-16 surrogate (\\ud800-\\udfff).")
        return data


# No request of this API nests more than a few levels; deeper JSON only costs stack and time.
MAX_DEPTH = 32


def _too_deep(data) -> bool:
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((value, depth + 1) for value in item.values())
        elif isinstance(item, list):
            stack.extend((value, depth + 1) for value in item)
    return False


def _has_lone_surrogate(data) -> bool:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():  # O(1) in CPython: the common case costs nothing more
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
