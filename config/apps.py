from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The composition root: it imports every app, and no app imports it."""

    name = "config"
    label = "desk"
    verbose_name = "Desk"
