"""Limit/offset pagination that refuses what it cannot read (issue 13, item 8).

DRF's LimitOffsetPagination quietly falls back to its defaults for `limit=abc`, `offset=-3` or a
repeated parameter; a client then gets a page it did not ask for. Here any such value is a 400
`validation_error` naming the parameter, and the schema states the bounds.
"""

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination

MAX_OFFSET = 1_000_000_000


class StrictLimitOffsetPagination(LimitOffsetPagination):
    def _read(self, request, name: str, *, minimum: int, maximum: int) -> int | None:
        values = request.query_params.getlist(name)
        if not values:
            return None
        value = values[0]
        if len(values) > 1 or not (value.isascii() and value.isdigit()) or not minimum <= int(value) <= maximum:
            raise exceptions.ValidationError({name: [f"Give one whole number from {minimum} to {maximum}."]})
        return int(value)

    def get_limit(self, request):
        limit = self._read(request, self.limit_query_param, minimum=1, maximum=self.max_limit or MAX_OFFSET)
        return self.default_limit if limit is None else limit

    def get_offset(self, request):
        return self._read(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET) or 0

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_limit or MAX_OFFSET)
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update(minimum=0, maximum=MAX_OFFSET)
        return parameters
