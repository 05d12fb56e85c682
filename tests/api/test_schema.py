"""The OpenAPI schema tells clients the truth (issue 14, finding 9): every error status a route
can give is documented with the one ErrorOut body, addresses carry their pattern in requests
and responses, integer bounds are exact, no route shadows another, and schemathesis with all
its checks finds nothing.

Schemathesis runs every built-in check (status-code, content-type, header and response-schema
conformance, server errors, negative-data rejection, positive-data acceptance, missing
headers, unsupported methods, allowed methods, ignored authentication, ...), bounded: five
examples an operation, one chain per database (about 30 s each). 413 counts as a rejection of
invalid data (a body over the limit is refused before it is read). One check is excluded, for
exactly these operations:

- positive_data_acceptance on POST /tokens, /ballots, /points/redemptions, /points/donations,
  /polls/{poll_id}/key-shares, /trustees/keys and /polls/{poll_id}/ceremony: a schema-valid body
  still needs an EIP-712 signature by the key it names (and a deadline in the future, an
  eligible resident, a closed poll), which no generated payload has, so the API's 422
  (`*.bad_signature`, `*.expired`) is right;
- positive_data_acceptance on POST /admin/polls: the schema cannot state the rules between
  fields (opensAt before closesAt, closesAt after the chain's now, maxChoices at most the
  options, threshold at most the trustees), which the route answers with 422 `poll.invalid_*`;
  and on POST /admin/polls/{poll_id}/ceremony/restart: the trustees excluded must be members of
  the ceremony's current attempt (422 `ceremony.invalid_exclusion`).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from veche_api.schemas import ADDRESS_PATTERN
from veche_testkit.devchain import ADMIN_KEY

SIGNED = {
    "POST /tokens",
    "POST /ballots",
    "POST /points/redemptions",
    "POST /points/donations",
    "POST /polls/{poll_id}/key-shares",
    "POST /trustees/keys",
    "POST /polls/{poll_id}/ceremony",
}
CROSS_FIELD = {"POST /admin/polls", "POST /admin/polls/{poll_id}/ceremony/restart"}

# A body over the limit is refused before it is read (413, main.BodyLimit): a rejection too.
CONFIG = SchemathesisConfig.from_str("""
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
""")

# A value for each path parameter, for requests built from the schema's paths.
PATH_VALUES = {
    "address": "0x" + "11" * 20,
    "poll_id": "1",
    "ballot_hash": "0x" + "ab" * 32,
    "request_id": "1",
    "code": "abcdef012345",
}


@pytest.fixture(scope="module")
def api_schema(api):
    # Some real data, so that fuzzed ids sometimes hit something that exists.
    api.create_poll(opens_in=5, lasts=100_000)
    api.advance(6)
    api.resident("Central")
    return schemathesis.openapi.from_url(api.url + "/openapi.json", config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_all_checks(case):
    label = f"{case.method.upper()} {case.path}"
    excluded = [positive_data_acceptance] if label in SIGNED | CROSS_FIELD else []
    case.call_and_validate(headers={"X-Admin-Key": ADMIN_KEY}, excluded_checks=excluded, timeout=30)


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
            patterns = {
                o.get("pattern") or o.get("items", {}).get("pattern") for o in options if o.get("type") != "null"
            }
            assert patterns == {ADDRESS_PATTERN}, (model, name, prop)
            seen += 1
    assert seen >= 15
    for path, method, operation in operations(openapi):
        for parameter in operation.get("parameters", []):
            if parameter["name"] in ("address", "resident"):
                options = parameter["schema"].get("anyOf", [parameter["schema"]])
                assert {o.get("pattern") for o in options if o.get("type") != "null"} == {ADDRESS_PATTERN}, (
                    method,
                    path,
                )


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
