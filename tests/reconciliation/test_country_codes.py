"""Exact's country as GoCardless' ISO code: GoCardless refuses anything else (the simulator
does too since it follows the documented rule), and the first two letters of a name are
another country ("Netherlands" -> "NE", Niger)."""

from __future__ import annotations

import pytest

from core.countries import ISO_3166_ALPHA2, iso_country
from reconciliation.customers.exact_push import customer_changes
from reconciliation.customers.normalise import country_code


@pytest.mark.parametrize(("exact", "iso"), [
    ("NL", "NL"), (" nl ", "NL"), ("GB", "GB"), ("UK", "GB"), ("EL", "GR"),
    ("Netherlands", ""), ("NE1", ""), ("XX", ""), ("", ""), (None, ""),
])
def test_exact_countries_become_iso_codes_or_nothing(exact, iso):
    assert country_code(exact) == iso == iso_country(exact)


def test_the_list_is_iso_3166_alpha_2():
    assert len(ISO_3166_ALPHA2) == 249
    common = {"NL", "BE", "DE", "FR", "GB", "IE", "SE", "DK", "US", "AU", "NZ", "CA"}
    assert common <= ISO_3166_ALPHA2
    assert not {"UK", "EL", "EU", "XK"} & ISO_3166_ALPHA2


def test_a_country_that_is_no_code_is_not_pushed_to_gocardless():
    before = {"country": "NL", "city": "Utrecht"}
    after = {"country": "Netherlands", "city": "Utrecht"}
    assert customer_changes(before=before, after=after) == {}
    assert customer_changes(before=before, after={"country": "UK", "city": "Leeds"}) == {
        "country_code": "GB", "city": "Leeds"}
