"""ArbitrageX: the project package and core app."""

from arbitragex.celery import app as celery_app

__all__ = ("celery_app",)
