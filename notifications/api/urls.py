from __future__ import annotations

from rest_framework.routers import SimpleRouter

from notifications.api.views import ChannelViewSet, RuleViewSet

router = SimpleRouter()
router.register("notifications/channels", ChannelViewSet, basename="notification-channel")
router.register("notifications/rules", RuleViewSet, basename="notification-rule")

urlpatterns = router.urls
