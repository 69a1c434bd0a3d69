"""Date-times as the API reads them: aware, and storable once converted to UTC.

``9999-12-31T23:59:59-23:59`` parses, but is past year 9999 in UTC, where neither Python
nor the database columns go; such values are refused with the field named, not a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields

STORABLE_RANGE = "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"


def storable_datetime_problem(value: datetime) -> str | None:
    """Why an aware date-time cannot be stored (it leaves years 1-9999 in UTC), or None."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return f"must be {STORABLE_RANGE} once converted to UTC"
    return None


class StorableDateTime(fields.AwareDateTime):
    """``AwareDateTime`` that also refuses values that overflow when converted to UTC."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        problem = storable_datetime_problem(result)
        if problem:
            raise ValidationError(problem)
        return result
