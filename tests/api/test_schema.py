"""The OpenAPI schema tells clients the truth (issue 14, finding 9): every error status a route
can give is documented with the one ErrorOut body, addresses carry their pattern in requests
and responses, integer bounds are exact, and no route shadows another. Then property-based
fuzzing of every operation (schemathesis): no input may produce a 5xx. Bounded: few examples
per operation, no deadline, one shared chain."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from veche_api.schemas import ADDRESS_PATTERN
from veche_api.testing import ADMIN_KEY

# A value for each path parameter, for requests built from the schema's paths.
PATH_VALUES = {"address": "0x" + "11" * 20, "poll_id": "1", "ballot_hash": "0x" + "ab" * 32,
               "request_id": "1", "code": "abcdef012345"}


@pytest.fixture(scope="module")
def api_schema(api):
    # Some real data, so that fuzzed ids sometimes hit something that exists.
    api.create_poll(opens_in=5, lasts=100_000)
    api.advance(6)
    api.resident("Central")
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json")
    # Creating a poll generates RSA-2048 keys per stratum: exercised by the flow tests instead.
    return schema.exclude(path="/admin/polls", method="POST")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call(headers={"X-Admin-Key": ADMIN_KEY}, timeout=30)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body


@pytest.fixture(scope="module")
def openapi(api) -> dict:
    return api.http.get("/openapi.json").json()


def operations(openapi: dict):
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def test_error_answers_are_documented(openapi):
    """Each operation documents the errors that come from outside its handler, and every error
    it documents is the ErrorOut body (FastAPI's own HTTPValidationError is never rendered)."""
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    for path, method, operation in operations(openapi):
        statuses = {int(s) for s in operation["responses"] if int(s) >= 400}
        expected = set()
        if method == "POST":
            expected.add(413)  # main.BodyLimit
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                expected.add(400)  # a body the JSON parser cannot read
        if operation.get("security"):
            expected.add(401)  # deps.require_admin
        if operation.get("parameters") or operation.get("requestBody"):
            expected.add(422)
        if path == "/health":
            continue  # answers 503 with its own body when degraded (routes/health.py)
        assert expected <= statuses, (method, path, sorted(statuses))
        for status in statuses:
            schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)
    admin = {f"{m} {p}" for p, m, op in operations(openapi) if op.get("security")}
    assert admin == {f"{m} {p}" for p, m, _ in operations(openapi) if p.startswith("/admin/")}
    assert openapi["components"]["schemas"]["ErrorOut"]["required"] == ["error"]
    assert set(openapi["components"]["schemas"]["ErrorDetail"]["required"]) == {"code", "message"}


def test_addresses_have_their_pattern(openapi):
    """Every address, in a request or a response, a body or a path or a query, says its
    pattern. (ImportRow.address echoes what a bad CSV row held, so it is any string.)"""
    names = {"address", "resident", "account", "token", "relayer", "pollBook", "trustees"}
    seen = 0
    for model, schema in openapi["components"]["schemas"].items():
        for name, prop in schema.get("properties", {}).items():
            if name not in names or (model, name) == ("ImportRow", "address") or "$ref" in prop.get("items", {}):
                continue  # (PollCreate.trustees are Trustee objects, checked as Trustee.address)
            options = prop.get("anyOf", [prop])
            patterns = {o.get("pattern") or o.get("items", {}).get("pattern") for o in options if o.get("type") != "null"}
            assert patterns == {ADDRESS_PATTERN}, (model, name, prop)
            seen += 1
    assert seen >= 15
    for path, method, operation in operations(openapi):
        for parameter in operation.get("parameters", []):
            if parameter["name"] in ("address", "resident"):
                options = parameter["schema"].get("anyOf", [parameter["schema"]])
                assert {o.get("pattern") for o in options if o.get("type") != "null"} == {ADDRESS_PATTERN}, (method, path)


def test_no_route_shadows_another(api, openapi):
    """OPTIONS (a method no route takes) on each documented path answers 405 naming exactly
    that path's methods. `/points/{address}` used to catch `/points/donations` and
    `/points/redemptions` and answer with its own `Allow: GET`."""
    for path, item in openapi["paths"].items():
        url = path.format(**PATH_VALUES)
        reply = api.http.options(url)
        assert reply.status_code == 405, (url, reply.status_code)
        allowed = {m.strip() for m in reply.headers["allow"].split(",")} - {"HEAD"}
        assert allowed == {m.upper() for m in item}, (url, allowed)
    reply = api.http.get("/points/donations")
    assert reply.status_code == 405 and reply.headers["allow"] == "POST"
    assert api.http.get("/points/0x1234").status_code == 404


def test_integer_bounds_are_exact(openapi):
    """FastAPI renders bounds as floats (2**63 - 1 became 2**63); main._openapi puts back the
    models' integers, so a client generating from the schema stays inside what the API takes."""
    from veche_api.schemas import BallotIn

    stack, bounds = [openapi], 0
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in ("minimum", "maximum"):
                if key in node:
                    assert isinstance(node[key], int), node
                    bounds += 1
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    assert bounds > 40
    sequence = openapi["components"]["schemas"]["BallotIn"]["properties"]["sequence"]
    assert sequence["maximum"] == BallotIn.model_fields["sequence"].metadata[-1].le == 2**63 - 1
