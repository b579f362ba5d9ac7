"""Errors get the site's own pages, with its look: not found, not allowed, a form sent
without its CSRF token, and a server error (never Django's bare pages)."""

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import permission_denied, server_error

STYLE = "realize/realize.css"


@pytest.mark.django_db
def test_a_missing_page_is_said_so_in_the_sites_own_page(admin_client):
    response = admin_client.get("/areas/nope/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "Not found" in page and STYLE in page and "Dashboard" in page  # logged in: its menu


@pytest.mark.django_db
def test_a_form_sent_without_its_token_changes_nothing_and_says_why(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(reverse("areas"), {"name": "docs", "path": "/tmp", "mode": "real"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "The form has expired" in page and STYLE in page and "Nothing was changed" in page


def test_server_errors_and_refusals_have_styled_pages():
    request = RequestFactory().get("/anything/")
    page = server_error(request).content.decode()
    assert "Something went wrong" in page and STYLE in page
    page = permission_denied(request, PermissionError()).content.decode()
    assert "Not allowed" in page and STYLE in page
