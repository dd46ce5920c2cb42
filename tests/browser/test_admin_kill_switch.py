"""The kill switch in the admin, in a real browser: from the index panel, through the confirmation
page, to trading off, with the audit row to show who did it and what it was before."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from arbitragex.models import AuditLog, SystemConfig
from tests.browser.conftest import PASSWORD, log_in

pytestmark = pytest.mark.slow


def test_an_operator_turns_trading_off_through_the_confirmation_page(page, transactional_db):
    from playwright.sync_api import expect

    operator = get_user_model().objects.create_superuser(username="operator", password=PASSWORD, email="op@example.com")

    log_in(page, "/admin/", "operator")
    expect(page.locator("#kill-switch-state")).to_have_text("Trading ON")
    page.click("#kill-switch-toggle")

    # The confirmation page: nothing has changed yet.
    expect(page.locator("h1")).to_have_text("Turn trading off")
    expect(page.locator(".operation-consequences")).to_contain_text("No new execution starts")
    assert not SystemConfig.objects.filter(key="trading_enabled").exists()
    page.click("button.confirm-operation")

    page.wait_for_url("**/admin/")
    expect(page.locator("#kill-switch-state")).to_have_text("Trading OFF")
    expect(page.locator(".messagelist")).to_contain_text("Kill switch engaged")
    assert SystemConfig.objects.get(key="trading_enabled").value is False
    audit = AuditLog.objects.get(action="config.set", target="trading_enabled")
    assert (audit.actor, audit.previous, audit.new) == (operator, True, False)

    # The dashboard shows the same state.
    page.goto("/dashboard/")
    expect(page.locator("#kill-state")).to_have_text("Trading OFF (kill switch)")
    assert page.js_errors == []
