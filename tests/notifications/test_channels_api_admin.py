"""Channels and rules through the staff API and the admin: the URL is write-only (only its scheme is
shown), checked by Apprise, stored encrypted; every change and every test message is audited."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from arbitragex.models import AuditLog
from notifications.events import EventKind
from notifications.models import Channel, Delivery, Rule
from tests.notifications.support import SECRET_TOKEN, channel_with_rule, staff_user

pytestmark = pytest.mark.django_db

CHANNELS = "/api/v1/notifications/channels/"
RULES = "/api/v1/notifications/rules/"


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(staff_user())
    return client


def test_a_channel_is_created_with_a_write_only_url_stored_encrypted(api, receiver):
    response = api.post(CHANNELS, {"name": "desk", "url": receiver.url}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["scheme"], body["url_display"], body["enabled"]) == ("desk", "json", "json://…", True)
    assert "url" not in body
    assert SECRET_TOKEN not in response.content.decode()
    row = Channel.objects.values("url_encrypted").get()
    assert SECRET_TOKEN not in row["url_encrypted"]
    assert Channel.objects.get().get_url() == receiver.url
    audit = AuditLog.objects.get(action="notification.channel.create")
    assert audit.new == {"name": "desk", "scheme": "json", "enabled": True}
    assert SECRET_TOKEN not in str(audit.new)


def test_a_url_apprise_cannot_use_is_refused_in_the_one_error_shape_without_echoing_it(api):
    bad = f"nosuchservice://{SECRET_TOKEN}@host"
    response = api.post(CHANNELS, {"name": "bad", "url": bad}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 1001 and body["message"].startswith("url: Apprise cannot use this nosuchservice:// URL")
    assert SECRET_TOKEN not in response.content.decode()
    missing = api.post(CHANNELS, {"name": "nourl"}, format="json")
    assert (missing.status_code, missing.json()["code"]) == (400, 1001)
    assert not Channel.objects.exists()


def test_a_channel_is_changed_without_resending_its_url_and_can_be_deleted(api, receiver):
    created = api.post(CHANNELS, {"name": "desk", "url": receiver.url}, format="json").json()

    renamed = api.patch(f"{CHANNELS}{created['id']}/", {"name": "ops", "enabled": False}, format="json")

    assert renamed.status_code == 200
    channel = Channel.objects.get()
    assert (channel.name, channel.enabled, channel.get_url()) == ("ops", False, receiver.url)
    update = AuditLog.objects.get(action="notification.channel.update")
    assert update.previous["name"] == "desk" and update.new["url_changed"] is False

    assert api.delete(f"{CHANNELS}{created['id']}/").status_code == 204
    assert not Channel.objects.exists()
    assert AuditLog.objects.filter(action="notification.channel.delete", target="ops").exists()


def test_the_api_sends_a_test_message_and_says_whether_it_arrived(api, receiver):
    channel = channel_with_rule(receiver)

    response = api.post(f"{CHANNELS}{channel.pk}/test/")

    assert response.json() == {"sent": True, "reason": ""}
    assert receiver.wait_for(1)[0].title == "ArbitrageX test message"
    assert Delivery.objects.get(kind=Delivery.Kind.TEST).status == Delivery.Status.SENT


def test_rules_map_kinds_to_channels_with_a_minimum_severity(api, receiver):
    channel = channel_with_rule(receiver)

    response = api.post(
        RULES,
        {"name": "pager", "kinds": [EventKind.BREAKER_TRIPPED, EventKind.VENUE_BANNED], "min_severity": "critical",
         "channels": [channel.pk]},
        format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.content
    rule = Rule.objects.get(name="pager")
    assert (rule.kinds, rule.min_severity, list(rule.channels.all())) == (
        ["breaker.tripped", "venue.banned"],
        "critical",
        [channel],
    )
    bad = api.post(RULES, {"name": "x", "kinds": ["no.such"], "channels": [channel.pk]}, format="json")
    assert bad.status_code == 400 and bad.json()["message"].startswith("kinds:")
    listed = api.get(RULES).json()
    assert {r["name"] for r in listed} == {"desk rule", "pager"}


def test_only_staff_may_read_or_change_channels_and_rules(receiver):
    channel_with_rule(receiver)
    anonymous = APIClient()
    user = get_user_model().objects.create_user(username="viewer", password="a-long-viewer-password-1")
    member = APIClient()
    member.force_authenticate(user)

    for path in (CHANNELS, RULES):
        assert anonymous.get(path).status_code == 401
        denied = member.get(path)
        assert (denied.status_code, denied.json()["code"]) == (403, 1003)
    assert member.post(CHANNELS, {"name": "x", "url": receiver.url}, format="json").status_code == 403


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


# --- the admin -------------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    client.force_login(staff_user("root"))
    return client


def test_the_admin_adds_a_channel_through_a_password_field_and_shows_only_its_scheme(admin_client, receiver):
    add = reverse("admin:notifications_channel_add")
    refused = admin_client.post(add, {"name": "", "url": receiver.url, "enabled": "on"})
    assert refused.status_code == 200 and b"This field is required" in refused.content
    assert SECRET_TOKEN.encode() not in refused.content  # the form with errors does not echo it

    response = admin_client.post(add, {"name": "desk", "url": receiver.url, "enabled": "on"})

    assert response.status_code == 302
    channel = Channel.objects.get()
    assert channel.get_url() == receiver.url
    change = admin_client.get(reverse("admin:notifications_channel_change", args=[channel.pk]))
    assert b"json://\xe2\x80\xa6" in change.content and SECRET_TOKEN.encode() not in change.content
    # Saved again without a URL: the stored one is kept.
    admin_client.post(reverse("admin:notifications_channel_change", args=[channel.pk]), {"name": "ops", "url": ""})
    channel.refresh_from_db()
    assert (channel.name, channel.enabled, channel.get_url()) == ("ops", False, receiver.url)


def test_the_admin_refuses_a_url_apprise_cannot_use(admin_client):
    response = admin_client.post(
        reverse("admin:notifications_channel_add"), {"name": "x", "url": f"bogus://{SECRET_TOKEN}", "enabled": "on"}
    )
    assert response.status_code == 200
    assert b"Apprise cannot use this bogus:// URL" in response.content
    assert SECRET_TOKEN.encode() not in response.content
    assert not Channel.objects.exists()


def test_the_admin_test_message_asks_for_confirmation_then_sends_and_audits(admin_client, receiver):
    channel = channel_with_rule(receiver)
    changelist = reverse("admin:notifications_channel_changelist")
    selection = {"action": "send_test_message", "_selected_action": [channel.pk]}

    asked = admin_client.post(changelist, selection)

    assert asked.status_code == 200 and b"Send a test message to these channels now?" in asked.content
    assert not receiver.messages and not AuditLog.objects.filter(action="notification.test").exists()

    done = admin_client.post(changelist, {**selection, "confirmed": "yes"})

    assert done.status_code == 302
    assert "desk: test message sent." in messages_of(admin_client.get(done["Location"]))
    assert receiver.wait_for(1)[0].title == "ArbitrageX test message"
    audit = AuditLog.objects.get(action="notification.test")
    assert (audit.target, audit.actor_label, audit.new["sent"]) == ("desk", "root", True)


def test_a_failed_test_message_says_why(admin_client, receiver):
    receiver.fail_with = 503
    channel = channel_with_rule(receiver)
    done = admin_client.post(
        reverse("admin:notifications_channel_changelist"),
        {"action": "send_test_message", "_selected_action": [channel.pk], "confirmed": "yes"},
    )
    (message,) = messages_of(admin_client.get(done["Location"]))
    assert message.startswith("desk: not delivered: Failed to send JSON POST notification")
    assert Delivery.objects.get().status == Delivery.Status.FAILED


def test_the_delivery_log_and_events_are_read_only_in_the_admin(admin_client, receiver):
    channel = channel_with_rule(receiver)
    from notifications import services

    services.channel_test(channel=channel)
    delivery = Delivery.objects.get()
    for name in ("delivery", "event"):
        page = admin_client.get(reverse(f"admin:notifications_{name}_changelist"))
        assert page.status_code == 200
        assert SECRET_TOKEN.encode() not in page.content
    assert admin_client.get(reverse("admin:notifications_delivery_add")).status_code == 403
    detail = admin_client.get(reverse("admin:notifications_delivery_change", args=[delivery.pk]))
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert admin_client.get(reverse("admin:notifications_rule_changelist")).status_code == 200
