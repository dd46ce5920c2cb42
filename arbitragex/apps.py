from django.apps import AppConfig


class ArbitrageXConfig(AppConfig):
    name = "arbitragex"
    verbose_name = "ArbitrageX platform"
    default_auto_field = "django.db.models.BigAutoField"
