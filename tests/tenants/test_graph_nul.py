"""A NUL in a string from Graph (Woodgrove's "Reporting\\u0000Bot") is read as U+FFFD:
PostgreSQL cannot store NUL in text, and one app's name must not fail a tenant's sync."""

import json

import pytest
import requests

from tenants.graph import graph_json


def answer(body: str) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body.encode()
    response.headers["Content-Type"] = "application/json"
    return response


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ({"displayName": "Reporting\x00Bot"}, {"displayName": "Reporting\ufffdBot"}),
        # A backslash before "u0000" is text, not a NUL: it stays exactly as it was.
        ({"displayName": "C:\\u0000 share"}, {"displayName": "C:\\u0000 share"}),
        ({"displayName": "\\\x00"}, {"displayName": "\\\ufffd"}),
        ({"value": ["a\x00", "b"]}, {"value": ["a\ufffd", "b"]}),
        ({"displayName": "Plain"}, {"displayName": "Plain"}),
    ],
)
def test_a_nul_from_graph_is_read_as_the_replacement_character(sent, read):
    assert graph_json(answer(json.dumps(sent))) == read
