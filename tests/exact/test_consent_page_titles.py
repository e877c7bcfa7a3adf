"""The consent steps' pages (outside the admin's own views) carry the product's name and say
their title once (the admin's base already prints it; the journeys found it twice, under a
"Django administration" header)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


def test_a_consent_page_names_the_product_and_its_title_once(client):
    response = client.get("/connect/exact/callback/", {"error": "access_denied", "state": "x"})
    html = response.content.decode()
    headings = re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    assert len(headings) == 1, headings
    assert "ml-connector" in html and "Django administration" not in html
