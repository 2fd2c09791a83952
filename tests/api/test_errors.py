"""The HTTP edge's mapping of service errors (``api.errors``)."""

from __future__ import annotations

import pytest

from attendance_live.api.errors import STATUS, status_of
from attendance_live.service.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError


@pytest.mark.parametrize("error", ServiceError.__subclasses__())
def test_every_service_error_has_its_own_status(error: type[ServiceError]) -> None:
    assert error in STATUS, f"{error.__name__} has no HTTP status in api.errors.STATUS"


def test_statuses() -> None:
    assert [status_of(e("m")) for e in (InvalidInput, NotFound, Forbidden, Conflict)] == [422, 404, 403, 409]

    class Unmapped(ServiceError):
        pass

    assert status_of(Unmapped("m")) == 400
