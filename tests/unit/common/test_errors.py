"""One table maps service errors to HTTP; errors keep their class and fields across RPC."""
import pytest
from nameko.exceptions import deserialize, serialize

from services.common import errors


@pytest.mark.parametrize(("exc", "status"), [
    (errors.InvalidInput("bad", {"email": [{"code": "invalid_email"}]}), 400),
    (errors.Unauthorized("no"), 401),
    (errors.NotFound("gone"), 404),
    (errors.Conflict("twice"), 409),
    (errors.Gone("expired"), 410),
    (errors.RateLimited("slow down"), 429),
    (errors.PorticoError("unknown"), 500),
])
def test_each_error_has_one_status(exc, status):
    assert errors.http_status(exc) == status


def test_an_error_crosses_rpc_as_itself_with_its_fields():
    original = errors.InvalidInput("the order has invalid fields", {
        "email": [{"code": "invalid_email", "message": "Bad."}],
        "validity_minutes": [{"code": "out_of_range", "params": {"min": 1, "max": 10080}}]})
    received = deserialize(serialize(original))
    assert type(received) is errors.InvalidInput
    assert received.fields == original.fields
    assert received.fields["validity_minutes"][0]["params"]["max"] == 10080  # still a number
    assert received.message == "the order has invalid fields"
