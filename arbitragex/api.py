"""The single DRF exception handler: every API error leaves as {"code", "message", "detail"}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, OperationalError, connection
from django.http import Http404, JsonResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response

from arbitragex.errors import DEFAULT_MESSAGES, ApplicationError, ErrorCode, http_status_for
from arbitragex.money import InvalidAmount

logger = logging.getLogger(__name__)

_DRF_CODES: list[tuple[type[exceptions.APIException], ErrorCode]] = [
    (exceptions.NotAuthenticated, ErrorCode.NOT_AUTHENTICATED),
    (exceptions.AuthenticationFailed, ErrorCode.NOT_AUTHENTICATED),
    (exceptions.PermissionDenied, ErrorCode.PERMISSION_DENIED),
    (exceptions.NotFound, ErrorCode.NOT_FOUND),
    (exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (exceptions.Throttled, ErrorCode.THROTTLED),
    (exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA),
    (exceptions.NotAcceptable, ErrorCode.INVALID_PARAMETER),
    (exceptions.ParseError, ErrorCode.INVALID_PARAMETER),
    (exceptions.ValidationError, ErrorCode.INVALID_PARAMETER),
]


def error_body(code: ErrorCode, message: str | None = None, detail: Any = None) -> dict[str, Any]:
    return {"code": int(code), "message": message or DEFAULT_MESSAGES.get(code, code.name), "detail": detail}


def _message_from_detail(detail: Any) -> str | None:
    """A one-line message naming the first offending field, e.g. 'quantity: must be positive'."""
    if isinstance(detail, dict):
        for field, errors in detail.items():
            inner = _message_from_detail(errors)
            if inner:
                return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _message_from_detail(detail[0])
    if isinstance(detail, str):
        return detail
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:  # noqa: C901 (one mapping from every exception kind to the one error shape, read top to bottom)
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=http_status_for(exc.code))
    if isinstance(exc, InvalidAmount):
        return Response(error_body(ErrorCode.INVALID_PARAMETER, str(exc)), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return Response(error_body(ErrorCode.NOT_FOUND), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return Response(
            error_body(ErrorCode.INVALID_PARAMETER, _message_from_detail(detail), detail),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, RedisError | KombuOperationalError):
        # Redis restarts are routine: the request can be retried once it is back.
        logger.warning("Redis unavailable in API: %s: %s", type(exc).__name__, exc)
        return _unavailable(ErrorCode.SERVICE_UNAVAILABLE)
    if isinstance(exc, OperationalError) and _connection_lost():
        logger.warning("database unavailable in API: %s", exc)
        return _unavailable(ErrorCode.DB_UNAVAILABLE)
    if isinstance(exc, IntegrityError):
        logger.warning("integrity error in API: %s", exc)
        return Response(error_body(ErrorCode.DB_DUPLICATE), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DatabaseError):
        logger.exception("database error in API")
        return Response(error_body(ErrorCode.DB_ERROR), status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.APIException):
        code = next((c for klass, c in _DRF_CODES if isinstance(exc, klass)), ErrorCode.INVALID_PARAMETER)
        if exc.status_code >= 500:
            code = ErrorCode.INTERNAL_ERROR
        detail = exc.detail
        message = _message_from_detail(detail) if isinstance(exc, exceptions.ValidationError) else None
        response = Response(
            error_body(code, message or str(_message_from_detail(detail) or ""), detail), status=exc.status_code
        )
        if not response.data["message"]:
            response.data["message"] = DEFAULT_MESSAGES[code]
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            response["Retry-After"] = str(int(wait))
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            response["WWW-Authenticate"] = auth_header
        return response
    logger.exception("unhandled error in API")
    return Response(error_body(ErrorCode.INTERNAL_ERROR), status=status.HTTP_500_INTERNAL_SERVER_ERROR)


RETRY_AFTER_S = 5


def _unavailable(code: ErrorCode) -> Response:
    response = Response(error_body(code), status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _connection_lost() -> bool:
    """Whether the default connection is broken (a server restart or outage), not a query's own error."""
    raw = connection.connection
    return raw is None or bool(getattr(raw, "closed", False)) or getattr(raw, "broken", False)


def json_404(request: Any, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(ErrorCode.NOT_FOUND), status=404)


def json_500(request: Any) -> JsonResponse:
    return JsonResponse(error_body(ErrorCode.INTERNAL_ERROR), status=500)
