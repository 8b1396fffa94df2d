"""Request parsers for the API."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser that also refuses lone UTF-16 surrogates ("\\ud800"): JSON text may
    escape one, but no UTF-8 string can hold it, so it used to fail later — in PostgreSQL or
    while writing the response — as a 500 instead of a 400 malformed_request."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if _has_lone_surrogate(data):
            raise ParseError("JSON parse error - the body holds a lone UTF-16 surrogate (\\ud800-\\udfff).")
        return data


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
