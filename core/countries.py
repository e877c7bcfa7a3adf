"""ISO 3166-1 alpha-2 country codes (the 249 officially assigned ones): what GoCardless
accepts as a customer's ``country_code`` ("an ISO 3166-1 alpha-2 code", API reference,
customers; anything else is refused with ``is invalid``).

Exact Online keeps a country as a code its users type or import; two non-ISO spellings are
common in European books and mean one ISO country each: ``UK`` (ISO: ``GB``) and ``EL``
(the EU's code for Greece in VAT numbers; ISO: ``GR``).
"""

from __future__ import annotations

ISO_3166_ALPHA2 = frozenset("""
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN
    BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL
    GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM
    JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME
    MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP
    NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD
    SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())

ALIASES = {"UK": "GB", "EL": "GR"}


def iso_country(code: str | None) -> str:
    """``code`` as an ISO 3166-1 alpha-2 code, or "" when it is not one (never a guess such as
    the first two letters of a country's name)."""
    value = (code or "").strip().upper()
    value = ALIASES.get(value, value)
    return value if value in ISO_3166_ALPHA2 else ""
