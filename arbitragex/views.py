"""Platform-level views: health, Prometheus metrics, and the core app's API (auth token, config).

It also holds what every app's API shares: the error shape as a serializer for the OpenAPI schema
(``ErrorSerializer``, ``error_responses``) and the staff-only permission. The shape itself is
produced by the single exception handler, ``arbitragex.api.exception_handler``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_choice_field
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import ISO_8601, exceptions, permissions, serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from arbitragex import config, metrics
from arbitragex.api import error_body
from arbitragex.celery import app
from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import DECIMAL_PLACES, MAX_DIGITS, fmt, to_decimal
from arbitragex.services import config_set, config_values

# --- health ------------------------------------------------------------------------------------------------------


def _check(fn: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = fn()
    except Exception as exc:  # noqa: BLE001 (a health check reports every failure instead of raising)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
    if detail:
        result.update(detail)
    return result


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _redis() -> None:
    cache.set("health:ping", "1", timeout=5)
    if cache.get("health:ping") != "1":
        raise RuntimeError("value written to the cache did not read back")


def _celery() -> dict[str, Any]:
    replies = app.control.ping(timeout=1.0) or []
    if not replies:
        raise RuntimeError("no Celery worker answered within 1 s")
    return {"workers": sorted(name for reply in replies for name in reply)}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Reachability of the database, Redis and Celery workers. 200 when all answer, else 503."""
    checks = {"database": _check(_database), "redis": _check(_redis), "celery": _check(_celery)}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)


# --- metrics ---------------------------------------------------------------------------------------------------


def metrics_public() -> bool:
    """``METRICS_PUBLIC``: serve /metrics without authentication.

    Off by default: the figures describe trading activity. Keep it off unless /metrics is reachable
    only from the monitoring network.
    """
    return bool(settings.METRICS_PUBLIC)


def _metrics_user(request: HttpRequest) -> Any:
    """The staff check of /metrics accepts a DRF token (what a Prometheus scraper sends) or a session."""
    authenticated = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    if authenticated is not None:
        return authenticated[0]
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of ``arbitragex.metrics``: staff token or session, or METRICS_PUBLIC."""
    if not metrics_public():
        try:
            user = _metrics_user(request)
        except exceptions.AuthenticationFailed as exc:
            response = JsonResponse(error_body(ErrorCode.NOT_AUTHENTICATED, str(exc.detail)), status=401)
            response["WWW-Authenticate"] = "Token"
            return response
        if user is None:
            response = JsonResponse(error_body(ErrorCode.NOT_AUTHENTICATED), status=401)
            response["WWW-Authenticate"] = "Token"
            return response
        if not user.is_staff:
            return JsonResponse(error_body(ErrorCode.PERMISSION_DENIED, "staff only"), status=403)
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)


# --- what every app's API shares ----------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.ANY)
class AnyValueField(serializers.JSONField):
    """Any JSON value (documented as such)."""


class PlainDecimalField(serializers.DecimalField):
    """A decimal as a plain string without exponent or padding zeros ("0.001", not "1E-3" or "0.001000").

    DECIMAL(36,18) by default. It also renders the integer defaults of a row that was just created
    (``MoneyField(default=0)`` is ``0`` until the row is read back).
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", MAX_DIGITS)
        kwargs.setdefault("decimal_places", DECIMAL_PLACES)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return fmt(value if isinstance(value, Decimal) else to_decimal(value))


class UTCDateTimeField(serializers.DateTimeField):
    """A timestamp as DRF writes it with ``TIME_ZONE = "UTC"`` ("2024-08-08T10:00:00.123456Z"), without
    its per-value lookup of the current time zone: a page of the API renders hundreds of them."""

    def to_representation(self, value: Any) -> Any:
        output_format = getattr(self, "format", api_settings.DATETIME_FORMAT)
        if (
            isinstance(value, datetime)
            and value.tzinfo is not None
            and settings.TIME_ZONE == "UTC"
            and isinstance(output_format, str)
            and output_format.lower() == ISO_8601
        ):
            text = value.astimezone(UTC).isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return super().to_representation(value)


class ReadFastSerializerMixin:
    """``to_representation`` over a list of the readable fields made once per serializer, instead of
    DRF's generator over every field for every row: the same output, a quarter less time per row."""

    def to_representation(self, instance: Any) -> dict[str, Any]:
        readable = self.__dict__.get("_readable_list")
        if readable is None:
            readable = self.__dict__["_readable_list"] = [
                field
                for field in self.fields.values()  # type: ignore[attr-defined]
                if not field.write_only
            ]
        result: dict[str, Any] = {}
        for field in readable:
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            result[field.field_name] = None if check is None else field.to_representation(attribute)
        return result


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (``arbitragex.api.exception_handler``)."""

    code = serializers.IntegerField(help_text="Numeric error code (README, 'Error codes'), e.g. 1001.")
    message = serializers.CharField(help_text="One line for humans; names the offending field first.")
    detail = AnyValueField(
        allow_null=True, help_text="Structured detail: field errors by field name, or domain figures."
    )


_ERROR_DESCRIPTIONS = {
    400: "Invalid parameter or body (code 1001, or 4001 for a config value); the field is named.",
    401: "Not authenticated (code 1002).",
    403: "Permission denied (code 1003): staff only.",
    404: "Not found (code 1004 or 5001).",
    409: "Conflict with the current state (codes 1008, 2010, 2011, 5002).",
    422: "Refused by a risk or trading rule (codes 2001-2009).",
    429: "Too many requests (code 1005); see Retry-After.",
    501: "Not available in this build (code 1999).",
    502: "Venue error (codes 3000-3013).",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses that use the shared ``Error`` component; 401 and 429 are always included."""
    wanted = sorted({401, 429, *statuses})
    return {status: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS[status]) for status in wanted}


class NamedChoiceField(serializers.ChoiceField):
    """A choice field whose choice set is one named schema component (``ExecutionStatus``, ...).

    Without a name, drf-spectacular names enums after the field, and the several ``status`` fields of
    the API (execution, order, opportunity) collide.
    """

    def __init__(self, choices: Any, *, enum_name: str, **kwargs: Any) -> None:
        self.enum_name = enum_name
        super().__init__(choices, **kwargs)


class NamedChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField
    match_subclasses = True

    def get_name(self) -> str | None:
        return str(self.target.enum_name)

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> Any:
        schema = build_choice_field(self.target)
        schema.pop("x-spec-enum-id", None)
        return schema


class StrictBooleanFilter(filters.ChoiceFilter):
    """``true`` or ``false``; anything else is a 400 (django-filter's BooleanFilter ignores it silently)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        super().__init__(*args, **kwargs)

    def filter(self, qs: Any, value: Any) -> Any:
        if value in ("", None):
            return qs
        return super().filter(qs, value == "true")


class IsStaff(permissions.BasePermission):
    """Staff only. Anonymous requests still get 401 (the authentication check comes first)."""

    message = "staff only"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


# --- auth token -----------------------------------------------------------------------------------------------------


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text='Send it as "Authorization: Token <token>".')


@extend_schema(
    summary="Obtain an API token",
    description="Exchange a username and password for the user's API token (created on first use).",
    tags=["auth"],
    auth=[],
    request=AuthTokenSerializer,
    responses={200: TokenSerializer, **error_responses(400)},
)
class TokenView(ObtainAuthToken):
    # No session authentication here, so no CSRF check: the credentials are the authentication.
    authentication_classes = ()
    # Rate-limited per client address against password guessing (DRF's view has no throttle).
    throttle_classes = (AnonRateThrottle,)


# --- config ----------------------------------------------------------------------------------------------------


class ConfigEntrySerializer(serializers.Serializer):
    key = serializers.CharField()
    value = AnyValueField(help_text="The current value; decimals as strings.")
    type = NamedChoiceField(["bool", "int", "decimal", "choice", "str", "pairs"], enum_name="ConfigType")
    default = AnyValueField()
    description = serializers.CharField()
    allowed = serializers.CharField(help_text='What a new value must be, e.g. "int >= 1 and <= 3600".')
    choices = serializers.ListField(child=serializers.CharField(), help_text="The allowed values of a choice key.")


def _config_entries() -> list[dict[str, Any]]:
    values = config_values()
    return [
        {
            "key": name,
            "value": spec.to_json(values[name]),
            "type": spec.kind,
            "default": spec.to_json(spec.default),
            "description": spec.description,
            "allowed": spec.allowed(),
            "choices": list(spec.choices),
        }
        for name, spec in config.REGISTRY.items()
    ]


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _patch_field(spec: config.ConfigKey) -> serializers.Field:
    common: dict[str, Any] = {"required": False, "help_text": f"{spec.description} Allowed: {spec.allowed()}."}
    if spec.kind == "bool":
        return serializers.BooleanField(**common)
    if spec.kind == "int":
        return serializers.IntegerField(
            min_value=_int_or_none(spec.minimum), max_value=_int_or_none(spec.maximum), **common
        )
    if spec.kind == "decimal":
        return serializers.DecimalField(max_digits=36, decimal_places=18, **common)
    if spec.kind == "choice":
        return NamedChoiceField(list(spec.choices), enum_name=f"Config{spec.name.title().replace('_', '')}", **common)
    return serializers.CharField(max_length=500, allow_blank=True, **common)


# Documents the PATCH body key by key. The values are validated by config_set (the registry), not by
# this serializer, so that a bad value is refused with INVALID_CONFIG (4001) naming the key.
ConfigPatchSerializer = type(
    "ConfigPatchSerializer",
    (serializers.Serializer,),
    {name: _patch_field(spec) for name, spec in config.REGISTRY.items()},
)


class ConfigView(APIView):
    """Runtime settings (SystemConfig). Everyone authenticated reads; staff change them."""

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.request.method == "PATCH":
            return [IsStaff()]
        return [permissions.IsAuthenticated()]

    @extend_schema(
        summary="Runtime settings",
        tags=["config"],
        responses={200: ConfigEntrySerializer(many=True), **error_responses()},
    )
    def get(self, request: Request) -> Response:
        return Response(ConfigEntrySerializer(_config_entries(), many=True).data)

    @extend_schema(
        summary="Change runtime settings (staff)",
        description=(
            'Send only the keys to change, e.g. the kill switch `{"trading_enabled": false}`. All keys are '
            "applied in one transaction or none is; each change is written to the audit log with its actor "
            "and previous value. Decimals are sent as strings."
        ),
        tags=["config"],
        request=ConfigPatchSerializer,
        responses={200: ConfigEntrySerializer(many=True), **error_responses(400, 403, 404)},
        examples=[OpenApiExample("kill switch", value={"trading_enabled": False}, request_only=True)],
    )
    def patch(self, request: Request) -> Response:
        changes = request.data
        if not isinstance(changes, dict) or not changes:
            raise ApplicationError(
                ErrorCode.INVALID_PARAMETER,
                'body: send an object of the keys to change, e.g. {"trading_enabled": false}',
                {"body": ["expected a non-empty object"]},
            )
        with transaction.atomic():
            for key, value in changes.items():
                config_set(key=key, value=value, actor=request.user)
        return Response(ConfigEntrySerializer(_config_entries(), many=True).data)
