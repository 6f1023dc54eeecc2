"""Teams in a real browser: an owner invites a viewer by link, a new person creates an account through it and
sees the team read-only."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import shot
from .test_console_flow import sign_in

pytestmark = [pytest.mark.live, pytest.mark.browser]


def test_invite_a_viewer_by_link(page, chromium, console_server):
    sign_in(page)
    page.get_by_role("link", name="Team settings").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Team "))).to_be_visible()
    expect(page.locator("#my-role")).to_have_text("owner")
    page.get_by_role("link", name="Invite someone").click()
    page.get_by_label("viewer").check()
    page.get_by_label("Expires after (days)").fill("3")
    page.get_by_role("button", name="Create invitation link").click()
    link = page.locator("#invitation-url")
    expect(link).to_contain_text("/invite/mgi_")
    url = link.inner_text().strip()
    shot(page, "teams-01-invitation-link")
    page.get_by_role("link", name="Back to the team").click()
    expect(page.get_by_text("pending", exact=True)).to_be_visible()

    # The new person: another browser, nobody signed in.
    context = chromium.new_context(viewport={"width": 1366, "height": 860}, base_url=console_server.url)
    newcomer = context.new_page()
    try:
        newcomer.goto(url)
        expect(newcomer.get_by_role("heading", name=re.compile(r"^Join team "))).to_be_visible()
        newcomer.get_by_label("Username").fill("vera")
        newcomer.get_by_label("Password").fill("short")
        newcomer.get_by_role("button", name="Create account and join").click()
        expect(newcomer.get_by_text(re.compile("too short"))).to_be_visible()
        newcomer.get_by_label("Password").fill("vera-long-passphrase")
        newcomer.get_by_role("button", name="Create account and join").click()
        expect(newcomer).to_have_url(re.compile(r"/console/instances/$"))
        expect(newcomer.get_by_text(re.compile(r"You joined team .* as viewer\."))).to_be_visible()
        # Read-only: the instances are there, the buttons that change them are not.
        expect(newcomer.get_by_role("link", name="default", exact=True)).to_be_visible()
        expect(newcomer.get_by_role("link", name="Create instance")).to_have_count(0)
        newcomer.get_by_role("link", name="default", exact=True).click()
        expect(newcomer.get_by_role("heading", name=re.compile("^default"))).to_be_visible()
        expect(newcomer.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
        shot(newcomer, "teams-02-viewer-instance")
        newcomer.get_by_role("link", name="Team settings").click()
        expect(newcomer.locator("#my-role")).to_have_text("viewer")
        expect(newcomer.get_by_role("link", name="Invite someone")).to_have_count(0)
        # A page the role may not use answers 403 with what it needs.
        response = newcomer.goto("/console/instances/add/")
        assert response.status == 403
        expect(newcomer.get_by_text(re.compile("needs the admin role"))).to_be_visible()
        # The link worked once.
        response = newcomer.goto(url)
        assert response.status == 410
        expect(newcomer.get_by_text(re.compile("used already"))).to_be_visible()
    finally:
        context.close()

    # The owner sees who joined.
    page.reload()
    expect(page.locator('tr[data-member="vera"]')).to_contain_text("viewer")
    expect(page.get_by_text("accepted", exact=True)).to_be_visible()
    shot(page, "teams-03-team-settings")

    # Change the newcomer's role and remove them, in the side panel.
    drawer = page.locator("#drawer .drawer")
    page.get_by_role("link", name="Change the role of vera").click()
    expect(drawer).to_be_visible()
    drawer.get_by_label("member").check()
    drawer.get_by_role("button", name="Save role").click()
    expect(page.get_by_text("vera is now member.")).to_be_visible()
    expect(page.locator('tr[data-member="vera"]')).to_contain_text("member")
    page.get_by_role("link", name="Remove vera").click()
    expect(drawer.get_by_text(re.compile("Remove member vera"))).to_be_visible()
    drawer.get_by_role("button", name="Remove vera").click()
    expect(page.get_by_text(re.compile("vera removed from team"))).to_be_visible()
    expect(page.locator('tr[data-member="vera"]')).to_have_count(0)
    assert not page.js_errors
