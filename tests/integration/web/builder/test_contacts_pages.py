"""``/contacts``: search, pages newest first, a contact's page, editing attributes, test
contact; viewers read only; another workspace's contact is a 404."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from engine.campaigns import service as campaign_service
from engine.store import Database, contacts
from engine.store.models import Campaign
from tests.conftest import WorkspaceFixture, csrf_token, make_workspace
from tests.integration.factories import make_event, make_recorded_notification
from web.builder.contacts_pages import PAGE_SIZE


def _ids(page: str) -> list[str]:
    return re.findall(r'data-testid="contact-row">\s*<td[^>]*><a href="/contacts/([^"]+)"', page)


def test_list_search_and_pages(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    with db.transaction() as s:
        for i in range(PAGE_SIZE + 5):
            plan = "pro" if i % 10 == 0 else "free"
            contacts.upsert_contact(
                s, workspace.id, f"lead-{i:03d}", {"plan": plan, "email": f"p{i}@Example.com"}
            )
        contacts.upsert_contact(s, workspace.id, "50%_off", {"note": "<b>bold</b>"})
    other = make_workspace(db, "Other", "other@acme.test")
    with db.transaction() as s:
        contacts.upsert_contact(s, other.id, "stranger", {"plan": "pro"})
    first = logged_in.get("/contacts").get_data(as_text=True)
    ids = _ids(first)
    assert len(ids) == PAGE_SIZE and ids[0] == "50%25_off" and "stranger" not in first
    assert "&lt;b&gt;bold&lt;/b&gt;" in first and "<b>bold" not in first
    older = re.search(r'href="([^"]+)" data-testid="older-contacts"', first).group(1)
    second = logged_in.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert len(_ids(second)) == 6
    by_value = logged_in.get("/contacts?q=PRO").get_data(as_text=True)
    assert len(_ids(by_value)) == 6 and "stranger" not in by_value
    by_id = _ids(logged_in.get("/contacts?q=lead-05").get_data(as_text=True))
    assert by_id == [f"lead-{i:03d}" for i in range(54, 49, -1)]
    assert _ids(logged_in.get("/contacts?q=50%25_").get_data(as_text=True)) == ["50%25_off"]
    assert "No contact matches" in logged_in.get("/contacts?q=zzz").get_data(as_text=True)
    with db.transaction() as s:
        contacts.upsert_contact(s, workspace.id, "spain", {"city": "Málaga", "nick": 'say "hi"'})
    assert _ids(logged_in.get("/contacts?q=málaga").get_data(as_text=True)) == ["spain"]
    assert _ids(logged_in.get('/contacts?q=say "hi"').get_data(as_text=True)) == ["spain"]
    assert logged_in.get("/contacts/stranger").status_code == 404


def test_contact_page_edit_create_and_use_as_test(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    with db.transaction() as s:
        contact, _ = contacts.upsert_contact(s, workspace.id, "ada", {"first_name": "Ada"})
        campaign, _ = campaign_service.create_campaign(s, workspace.id, {"name": "Welcome"})
        make_event(s, workspace.id, contact, name="lead.create")
        make_recorded_notification(s, campaign, status="delivered", contact=contact)
        cid = campaign.id
    page = logged_in.get("/contacts/ada").get_data(as_text=True)
    assert "contact.first_name" in page and "lead.create" in page and "Welcome" in page
    assert 'data-testid="use-as-test"' in page
    token = csrf_token(logged_in, "/contacts/ada")
    bad = logged_in.post("/contacts/ada/attributes", data={"csrf_token": token, "attributes": "[1"})
    assert bad.status_code == 422 and "not valid JSON" in bad.get_data(as_text=True)
    good = logged_in.post(
        "/contacts/ada/attributes",
        data={"csrf_token": token, "attributes": '{"first_name": "Ada", "plan": "pro"}'},
    )
    assert good.status_code == 302
    with db.session() as s:
        assert contacts.get_contact(s, workspace.id, "ada").attributes == {
            "first_name": "Ada",
            "plan": "pro",
        }
    created = logged_in.post(
        "/contacts/new",
        data={"csrf_token": token, "external_id": "grace", "attributes": '{"plan": "free"}'},
    )
    assert created.status_code == 302 and created.headers["Location"] == "/contacts/grace"
    again = logged_in.post(
        "/contacts/new", data={"csrf_token": token, "external_id": "grace", "attributes": "{}"}
    )
    assert again.status_code == 422 and "exists already" in again.get_data(as_text=True)
    used = logged_in.post(
        "/contacts/ada/use-as-test", data={"csrf_token": token, "campaign_id": cid}
    )
    assert used.headers["Location"] == f"/campaigns/{cid}?test_contact=ada#test"
    with db.session() as s:
        assert s.get(Campaign, cid).audience["test_contacts"] == ["ada"]
    editor = logged_in.get(f"/campaigns/{cid}?test_contact=ada").get_data(as_text=True)
    assert '<option value="ada" selected>' in editor


def test_viewers_read_but_do_not_change(client: FlaskClient, db: Database, workspace) -> None:
    from tests.conftest import login
    from tests.integration.web.log.test_log_pages import add_member

    with db.transaction() as s:
        contacts.upsert_contact(s, workspace.id, "ada", {})
    add_member(db, workspace, "viewer@acme.test", "viewer")
    login(client, "viewer@acme.test")
    page = client.get("/contacts/ada").get_data(as_text=True)
    assert "Edit attributes" not in page and "use-as-test" not in page
    token = csrf_token(client, "/contacts")
    assert client.get("/contacts/new").status_code == 403
    denied = client.post("/contacts/ada/attributes", data={"csrf_token": token, "attributes": "{}"})
    assert denied.status_code == 403
