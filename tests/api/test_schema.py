"""The OpenAPI document: it validates without warnings, documents every route with the shared error
component, and what the GET endpoints answer validates against it."""

from __future__ import annotations

import io
import re
import time
from decimal import Decimal

import jsonschema
import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from marketdata import cache as quote_cache
from tests.api.conftest import at
from tests.factories import (
    AccountBalanceFactory,
    ArbitrageOpportunityFactory,
    FillFactory,
    InstrumentFactory,
    OrderFactory,
    RiskStateFactory,
)
from trading.enums import ExecutionStatus, OrderLeg
from venues.types import Quote

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def document():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_manage_py_spectacular_validates_and_fails_on_no_warning(tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target), stderr=io.StringIO())

    assert yaml.safe_load(target.read_text())["openapi"].startswith("3.")


def test_every_operation_documents_its_errors_with_the_error_component(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            errors = {int(code): body for code, body in responses.items() if int(code) >= 400}
            if path.startswith("/api/v1/schema") or path in {
                "/api/v1/quotes/",
                "/api/v1/klines/",
                "/api/v1/venues/",
                "/api/v1/instruments/",
            }:
                continue  # served by drf-spectacular itself, or owned by the market data API  # fmt: skip
            assert 401 in errors, (method, path)
            for code, body in errors.items():
                ref = body["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (method, path, code)
            if method in {"post", "patch"} and "/auth/token/" not in path:
                assert 403 in errors, (method, path)
                assert 400 in errors, (method, path)


def test_the_token_endpoint_is_documented_without_authentication(document):
    operation = document["paths"]["/api/v1/auth/token/"]["post"]

    assert operation.get("security", []) in ([], [{}])
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("AuthTokenRequest")
    assert document["components"]["schemas"]["Token"]["properties"]["token"]["type"] == "string"


def test_every_api_route_is_in_the_document(document):
    paths = set(document["paths"])

    assert {
        "/api/v1/executions/", "/api/v1/executions/{id}/", "/api/v1/executions/{id}/cancel/",
        "/api/v1/executions/statistics/", "/api/v1/orders/", "/api/v1/opportunities/", "/api/v1/balances/",
        "/api/v1/risk/", "/api/v1/risk/breaker/open/", "/api/v1/risk/breaker/close/", "/api/v1/risk/reset-daily/",
        "/api/v1/config/", "/api/v1/auth/token/",
    } <= paths  # fmt: skip
    assert set(document["paths"]["/api/v1/config/"]) == {"get", "patch"}
    assert set(document["paths"]["/api/v1/executions/"]) == {"get", "post"}


# --- responses against the document -------------------------------------------------------------------------


def _json_schema(node, *, strict: bool):
    """OpenAPI 3.0 schema -> JSON Schema: ``nullable`` becomes a null alternative; with ``strict``,
    objects refuse properties the document does not list."""
    if isinstance(node, list):
        return [_json_schema(item, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _json_schema(sub, strict=strict) for name, sub in value.items()}
        elif key not in {"nullable", "readOnly", "writeOnly", "example", "examples", "discriminator"}:
            out[key] = _json_schema(value, strict=strict)
    if strict and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _validator(document, path: str, method: str, status: int):
    schema = document["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    root = {
        **_json_schema(schema, strict=True),
        "components": {"schemas": _json_schema(document["components"]["schemas"], strict=True)},
    }
    return jsonschema.Draft202012Validator(root)


def _template(url: str) -> str:
    path = url.split("?")[0]
    return re.sub(r"/[0-9a-f]{8}-[0-9a-f-]{27}/", "/{id}/", path)


@pytest.fixture
def data(desk):
    """At least one row of everything, with nulls and non-nulls where the schema allows both."""
    for venue in (desk.a, desk.b):
        InstrumentFactory(venue=venue, symbol="BTCUSDT")
    now_ms = time.time_ns() // 1_000_000
    quote_cache.quotes_put([Quote("ven-a", "BTCUSDT", D("1"), D("2"), D("1.1"), D("3"), None, now_ms)])
    done = desk.execution(status=ExecutionStatus.COMPLETED, actual_profit=D("0.4"), fees_quote=D("0.1"),
                          started_at=at("2025-03-01 10:00"))  # fmt: skip
    FillFactory(order=OrderFactory(execution=done, leg=OrderLeg.BUY))
    OrderFactory(execution=done, leg=OrderLeg.SELL, time_in_force="IOC")
    desk.execution(started_at=at("2025-03-02 10:00"))
    ArbitrageOpportunityFactory(buy_venue=desk.a, sell_venue=desk.b, reject_code=2004)
    AccountBalanceFactory(account=desk.account_a)
    RiskStateFactory(breaker_open=True, last_reset_date=at("2025-03-01 00:00").date())
    return done


def test_what_each_get_endpoint_answers_validates_against_the_document(api, document, data):
    urls = [
        "/api/v1/executions/",
        "/api/v1/executions/?limit=1",
        f"/api/v1/executions/{data.id}/",
        "/api/v1/executions/statistics/?start=2025-03-01&end=2025-03-03",
        "/api/v1/executions/statistics/?start=2025-03-01&end=2025-03-03&group_by=day",
        "/api/v1/executions/statistics/?start=2025-03-01&end=2025-03-03&group_by=symbol",
        "/api/v1/orders/",
        "/api/v1/opportunities/",
        "/api/v1/balances/",
        "/api/v1/risk/",
        "/api/v1/config/",
        "/api/v1/venues/",
        "/api/v1/instruments/",
        "/api/v1/quotes/?symbol=BTCUSDT",
    ]
    for url in urls:
        response = api.get(url)
        assert response.status_code == 200, (url, response.content)
        _validator(document, _template(url), "get", 200).validate(response.json())


def test_errors_validate_against_the_error_component(api, anon, document, staff_api):
    cases = [
        (api.get("/api/v1/executions/", {"status": "NOPE"}), "/api/v1/executions/", "get"),
        (anon.get("/api/v1/executions/"), "/api/v1/executions/", "get"),
        (api.post("/api/v1/risk/breaker/open/", {}, format="json"), "/api/v1/risk/breaker/open/", "post"),
        (staff_api.patch("/api/v1/config/", {"leg_timeout_s": -1}, format="json"), "/api/v1/config/", "patch"),
        (api.get("/api/v1/executions/0196a0d2-6a4c-7c3e-9a51-1a2b3c4d5e6f/"), "/api/v1/executions/{id}/", "get"),
    ]
    for response, path, method in cases:
        _validator(document, path, method, response.status_code).validate(response.json())


def test_the_validation_is_not_vacuous(document):
    validator = _validator(document, "/api/v1/balances/", "get", 200)

    with pytest.raises(jsonschema.ValidationError):
        validator.validate([{"account": "a", "free": 1.5}])  # a float where a decimal string belongs
    with pytest.raises(jsonschema.ValidationError):
        validator.validate([{"undocumented": True}])


def test_the_docs_ui_and_the_schema_are_served(anon):
    docs = anon.get("/api/v1/docs/")
    schema = anon.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    assert schema.status_code == 200 and "/api/v1/executions/" in schema.json()["paths"]
