"""One message to one Apprise URL. Apprise speaks to the service (Telegram, Slack, ntfy, a webhook...);
this module only builds the call and turns its outcome into a reason an operator can read, without the
URL or its tokens (``notifications.redaction``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import apprise

from notifications import redaction
from notifications.events import Severity

__all__ = ["SendResult", "send", "url_check"]

logger = logging.getLogger(__name__)

# The whole call's limit: past it Apprise reports a timeout, well within the Celery task's time limit.
SEND_TIMEOUT_S = 20

_NOTIFY_TYPE = {
    Severity.INFO: apprise.NotifyType.INFO,
    Severity.WARNING: apprise.NotifyType.WARNING,
    Severity.CRITICAL: apprise.NotifyType.FAILURE,
}


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    reason: str = ""


def _asset() -> apprise.AppriseAsset:
    # Memory only: Apprise's persistent store would write service state (tokens included) to disk.
    return apprise.AppriseAsset(app_id="ArbitrageX", storage_mode="memory", secure_logging=True)


def url_check(url: str) -> str | None:
    """None when Apprise can send to ``url``; otherwise why not, without repeating the URL."""
    redaction.remember(url)
    scheme = redaction.scheme_of(url)
    if not scheme:
        return "not a URL: it must start with a scheme such as tgram://, slack://, ntfy:// or json://"
    if not apprise.Apprise(asset=_asset()).add(url):
        return f"Apprise cannot use this {scheme}:// URL (unknown scheme, or a part is missing or malformed)"
    return None


def send(url: str, *, title: str, body: str, severity: str) -> SendResult:
    redaction.remember(url)
    notifier = apprise.Apprise(asset=_asset())
    if not notifier.add(url):
        return SendResult(False, f"Apprise cannot use this {redaction.scheme_of(url) or '(no scheme)'}:// URL")
    result = notifier.notify(
        title=title,
        body=body,
        notify_type=_NOTIFY_TYPE[Severity(severity)],
        body_format=apprise.NotifyFormat.TEXT,
        timeout=SEND_TIMEOUT_S,
    )
    if result:
        return SendResult(True)
    entries = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
    reason = "; ".join(dict.fromkeys(entries)) or f"the service did not accept the message ({result.status.name})"
    return SendResult(False, redaction.redact(reason)[:1000])
