"""Error codes: database errors mapped to the original 5000-5005 codes (and 5006 for a database out of
reach), and the one API error shape ``{"code": <int>, "message": <str>, "detail": ...}`` for every
failure the API can return."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from rest_framework import exceptions
from rest_framework.test import APIClient

from arbitragex.api import exception_handler
from arbitragex.db import db_errors, mapped_db_errors, require_updated
from arbitragex.errors import (
    ApplicationError,
    DatabaseUnavailable,
    ErrorCode,
    NotFoundError,
    ValidationFailed,
    http_status_for,
)
from tests.factories import OrderFactory
from trading.models import Order

# --- database errors -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_missing_row_is_not_found_5001():
    with pytest.raises(ApplicationError) as exc, db_errors("order"):
        Order.objects.get(pk=10**9)

    assert exc.value.code == ErrorCode.DB_NOT_FOUND == 5001
    assert exc.value.message == "order not found"


@pytest.mark.django_db
def test_a_second_order_with_the_same_client_order_id_is_a_duplicate_5002():
    first = OrderFactory()

    with pytest.raises(ApplicationError) as exc, db_errors("order"), transaction.atomic():
        OrderFactory(execution=first.execution, client_order_id=first.client_order_id)

    assert exc.value.code == ErrorCode.DB_DUPLICATE == 5002
    assert exc.value.message == "order already exists"
    assert isinstance(exc.value.__cause__, IntegrityError)
    assert Order.objects.filter(client_order_id=first.client_order_id).count() == 1


@pytest.mark.django_db
def test_another_constraint_violation_is_an_update_failure_5003():
    order = OrderFactory()

    with pytest.raises(ApplicationError) as exc, db_errors("order"), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(filled_qty=order.quantity * 2)  # order_filled_within_qty

    assert exc.value.code == ErrorCode.DB_UPDATE_FAILED == 5003
    assert exc.value.message.startswith("order violates a constraint")


@pytest.mark.django_db
def test_any_other_database_error_is_5000():
    with pytest.raises(ApplicationError) as exc, db_errors("order"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT * FROM no_such_table")

    assert exc.value.code == ErrorCode.DB_ERROR == 5000
    assert isinstance(exc.value.__cause__, DatabaseError)


def test_a_transaction_management_error_is_5005():
    with pytest.raises(ApplicationError) as exc, db_errors():
        raise transaction.TransactionManagementError("An error occurred in the current transaction")

    assert exc.value.code == ErrorCode.DB_TRANSACTION_FAILED == 5005


@pytest.mark.parametrize(
    "lost", [OperationalError("server closed the connection unexpectedly"), InterfaceError("closed")]
)
def test_a_database_out_of_reach_is_5006_which_callers_retry(lost):
    with pytest.raises(DatabaseUnavailable) as exc, db_errors("order"):
        raise lost

    assert exc.value.code == ErrorCode.DB_UNAVAILABLE == 5006
    assert exc.value.__cause__ is lost


def test_application_errors_pass_through_unchanged():
    original = ApplicationError(ErrorCode.INSUFFICIENT_BALANCE, "USDT short by 10")

    with pytest.raises(ApplicationError) as exc, db_errors("order"):
        raise original

    assert exc.value is original


@pytest.mark.django_db
def test_the_decorator_maps_errors_of_the_whole_function():
    @mapped_db_errors("order")
    def load(pk: int) -> Order:
        return Order.objects.get(pk=pk)

    order = OrderFactory()
    assert load(order.pk) == order
    with pytest.raises(ApplicationError) as exc:
        load(10**9)
    assert exc.value.code == ErrorCode.DB_NOT_FOUND


@pytest.mark.django_db
def test_an_update_of_a_missing_row_is_an_update_failure_5003():
    order = OrderFactory()
    assert require_updated(Order.objects.filter(pk=order.pk).update(attempt=1), "order", order.pk) is None

    updated = Order.objects.filter(pk=10**9).update(attempt=1)
    with pytest.raises(ApplicationError) as exc:
        require_updated(updated, "order", 10**9)

    assert exc.value.code == ErrorCode.DB_UPDATE_FAILED
    assert exc.value.detail == {"id": str(10**9)}


# --- codes to HTTP --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.INVALID_PARAMETER, 400),
        (ErrorCode.NOT_AUTHENTICATED, 401),
        (ErrorCode.DB_NOT_FOUND, 404),
        (ErrorCode.DB_DUPLICATE, 409),
        (ErrorCode.INVALID_STATE_TRANSITION, 409),
        (ErrorCode.BREAKER_OPEN, 422),
        (ErrorCode.VENUE_UNAVAILABLE, 502),
        (ErrorCode.VENUE_ORDER_REJECTED, 502),
        (ErrorCode.DB_ERROR, 500),
        (ErrorCode.DB_TRANSACTION_FAILED, 500),
    ],
)
def test_each_code_maps_to_one_http_status(code, status):
    assert http_status_for(code) == status


def test_an_error_without_a_message_takes_the_default_one():
    assert ApplicationError(ErrorCode.DB_DUPLICATE).as_dict() == {
        "code": 5002, "message": "Duplicate record", "detail": None
    }  # fmt: skip
    assert NotFoundError().code == ErrorCode.DB_NOT_FOUND
    assert ValidationFailed("bad", {"f": 1}).as_dict() == {"code": 1001, "message": "bad", "detail": {"f": 1}}


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ApplicationError(ErrorCode.BREAKER_OPEN, "breaker open", {"until": None}), 422, 2002),
        (IntegrityError("duplicate key"), 409, 5002),
        (DatabaseError("server closed the connection"), 500, 5000),
        (exceptions.NotAuthenticated(), 401, 1002),
        (exceptions.PermissionDenied(), 403, 1003),
        (exceptions.MethodNotAllowed("DELETE"), 405, 1006),
        (exceptions.Throttled(wait=7), 429, 1005),
        (exceptions.ValidationError({"quantity": ["must be positive"]}), 400, 1001),
        (RuntimeError("boom"), 500, 1999),
    ],
)
def test_the_exception_handler_gives_every_error_the_same_shape(exc, status, code):
    response = exception_handler(exc, {})

    assert response.status_code == status
    assert set(response.data) == {"code", "message", "detail"}
    assert response.data["code"] == code
    assert isinstance(response.data["message"], str) and response.data["message"]
    assert "boom" not in response.data["message"] and "closed the connection" not in response.data["message"]


def test_a_validation_error_message_names_the_first_field():
    response = exception_handler(exceptions.ValidationError({"quantity": ["must be positive"]}), {})

    assert response.data["message"] == "quantity: must be positive"
    assert response.data["detail"] == {"quantity": ["must be positive"]}


def test_a_throttled_response_says_when_to_retry():
    assert exception_handler(exceptions.Throttled(wait=7), {})["Retry-After"] == "7"


# --- through the API ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bad_credentials_for_a_token_give_400_in_the_error_shape():
    response = APIClient().post("/api/v1/auth/token/", {"username": "nobody", "password": "wrong"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message", "detail"}
    assert body["code"] == ErrorCode.INVALID_PARAMETER == 1001
    assert body["message"] == "Unable to log in with provided credentials."
    assert body["detail"] == {"non_field_errors": ["Unable to log in with provided credentials."]}


@pytest.mark.django_db
def test_good_credentials_get_a_token(django_user_model):
    django_user_model.objects.create_user(username="ops", password="a long passphrase 42")

    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "ops", "password": "a long passphrase 42"}, format="json"
    )

    assert response.status_code == 200
    assert len(response.json()["token"]) == 40


@pytest.mark.django_db
def test_a_missing_field_names_it_in_the_message():
    response = APIClient().post("/api/v1/auth/token/", {"username": "ops"}, format="json")

    assert response.status_code == 400
    assert response.json()["message"] == "password: This field is required."


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/no-such-endpoint/", "/api/v1/", "/nowhere"])
def test_an_unknown_url_is_a_json_404_in_the_same_shape(client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": ErrorCode.NOT_FOUND, "message": "Not found", "detail": None}
