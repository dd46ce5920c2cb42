"""Notifications API (staff only): channels and rules. Channel writes go through
``notifications.services``, which encrypts the URL and writes the audit row; the URL is never returned."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.views import IsStaff, error_responses
from notifications import services
from notifications.api.serializers import ChannelSerializer, ChannelTestResultSerializer, RuleSerializer
from notifications.models import Channel, Rule

_CRUD_DOCS = {
    "list": {"responses": error_responses(403)},
    "retrieve": {"responses": error_responses(403, 404)},
    "create": {"responses": error_responses(400, 403)},
    "update": {"responses": error_responses(400, 403, 404)},
    "partial_update": {"responses": error_responses(400, 403, 404)},
    "destroy": {"responses": error_responses(403, 404)},
}


def _schema(noun: str, serializer: Any) -> dict[str, Any]:
    summaries = {
        "list": f"{noun}s (staff)",
        "retrieve": f"One {noun.lower()} (staff)",
        "create": f"Add a {noun.lower()} (staff)",
        "update": f"Replace a {noun.lower()} (staff)",
        "partial_update": f"Change a {noun.lower()} (staff)",
        "destroy": f"Delete a {noun.lower()} (staff)",
    }
    views = {}
    for name, docs in _CRUD_DOCS.items():
        ok = {"list": serializer(many=True), "destroy": None}.get(name, serializer)
        code = {"create": 201, "destroy": 204}.get(name, 200)
        views[name] = extend_schema(
            summary=summaries[name], tags=["notifications"], responses={code: ok, **docs["responses"]}
        )
    return views


@extend_schema_view(**_schema("Notification channel", ChannelSerializer))
class ChannelViewSet(viewsets.ModelViewSet):
    """Apprise channels. The URL is write-only: answers show its scheme only (``url_display``)."""

    serializer_class = ChannelSerializer
    permission_classes = [IsStaff]
    pagination_class = None
    queryset = Channel.objects.order_by("name")

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        if not data.get("url"):
            raise ApplicationError(ErrorCode.INVALID_PARAMETER, "url: this field is required", {"url": ["required"]})
        serializer.instance = services.channel_create(
            name=data["name"], url=data["url"], enabled=data.get("enabled", True), actor=self.request.user
        )

    def perform_update(self, serializer: Any) -> None:
        data = serializer.validated_data
        serializer.instance = services.channel_update(
            channel=serializer.instance,
            name=data.get("name"),
            url=data.get("url"),
            enabled=data.get("enabled"),
            actor=self.request.user,
        )

    def perform_destroy(self, instance: Channel) -> None:
        services.channel_delete(channel=instance, actor=self.request.user)

    @extend_schema(
        summary="Send a test message to the channel now (staff)",
        description="One attempt, no retry; recorded in the delivery log and the audit log with its outcome.",
        tags=["notifications"],
        request=None,
        responses={200: ChannelTestResultSerializer, **error_responses(400, 403, 404)},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        result = services.channel_test(channel=self.get_object(), actor=request.user)
        return Response({"sent": result.ok, "reason": result.reason}, status=status.HTTP_200_OK)


@extend_schema_view(**_schema("Notification rule", RuleSerializer))
class RuleViewSet(viewsets.ModelViewSet):
    """Rules: which event kinds (none: every kind), at or above which severity, go to which channels."""

    serializer_class = RuleSerializer
    permission_classes = [IsStaff]
    pagination_class = None
    queryset = Rule.objects.prefetch_related("channels").order_by("name")
