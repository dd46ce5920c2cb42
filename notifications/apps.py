from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Sits above trading: it listens to the signals of every app below it, and none of them imports it."""

    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import notifications.tasks  # noqa: F401  (connects the receivers that send the work the services find due)
        from notifications import receivers, redaction

        receivers.connect()
        redaction.install()
