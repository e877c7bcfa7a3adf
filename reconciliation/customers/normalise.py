"""Normalising what we compare or send: names, postcodes, e-mail, language, country.

Matching compares normalised values only, so "ACME B.V." and "Acme BV" agree, and
"1234 ab" equals "1234AB"; a legal-form word alone never makes two companies equal.
"""

from __future__ import annotations

import re
import unicodedata

from core.countries import iso_country

# Legal-form words dropped from company names before comparing (Benelux, UK, DE, FR, US).
LEGAL_FORMS = {
    "bv",
    "nv",
    "vof",
    "cv",
    "bvba",
    "sprl",
    "srl",
    "ltd",
    "limited",
    "plc",
    "llp",
    "llc",
    "inc",
    "corp",
    "co",
    "gmbh",
    "ag",
    "kg",
    "ug",
    "ohg",
    "sarl",
    "sa",
    "sas",
    "eurl",
    "se",
}
_NON_WORD = re.compile(r"[^\w]+")

# GoCardless customer languages (API notes §5.1).
GOCARDLESS_LANGUAGES = {"en", "fr", "de", "pt", "es", "it", "nl", "da", "nb", "sl", "sv"}
# Exact languages that GoCardless spells differently.
_LANGUAGE_ALIASES = {"no": "nb", "nn": "nb", "dk": "da", "se": "sv", "uk": "en", "gb": "en"}
# Languages with our own invitation templates; others fall back to English.
TEMPLATE_LANGUAGES = ("en", "nl", "de", "fr")

# Payer countries per scheme (GoCardless collects a currency through one scheme).
SEPA_COUNTRIES = {
    "AT",
    "BE",
    "BG",
    "CH",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "ES",
    "FI",
    "FR",
    "GB",
    "GI",
    "GR",
    "HR",
    "HU",
    "IE",
    "IS",
    "IT",
    "LI",
    "LT",
    "LU",
    "LV",
    "MC",
    "MT",
    "NL",
    "NO",
    "PL",
    "PT",
    "RO",
    "SE",
    "SI",
    "SK",
    "SM",
    "VA",
    "AD",
    "GF",
    "GP",
    "MQ",
    "RE",
    "YT",
    "PM",
    "BL",
    "MF",
}
SCHEME_FOR_CURRENCY = {
    "EUR": "sepa_core",
    "GBP": "bacs",
    "SEK": "autogiro",
    "DKK": "betalingsservice",
    "AUD": "becs",
    "NZD": "becs_nz",
    "CAD": "pad",
    "USD": "ach",
}
COUNTRIES_FOR_SCHEME = {
    "sepa_core": SEPA_COUNTRIES,
    "bacs": {"GB", "GG", "JE", "IM"},
    "autogiro": {"SE"},
    "betalingsservice": {"DK", "FO", "GL"},
    "becs": {"AU"},
    "becs_nz": {"NZ"},
    "pad": {"CA"},
    "ach": {"US"},
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _ascii_fold(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def company_key(name: str | None) -> str:
    """Lower-case words without accents, punctuation or legal forms ("acme trading")."""
    words = _NON_WORD.sub(" ", _ascii_fold(name or "").casefold()).split()
    # "B.V." becomes "b v": glue single letters back together before dropping legal forms.
    glued: list[str] = []
    for word in words:
        if (
            len(word) == 1
            and glued
            and len(glued[-1]) <= 2
            and glued[-1].isalpha()
            and (glued[-1] + word in LEGAL_FORMS)
        ):
            glued[-1] += word
        else:
            glued.append(word)
    return " ".join(w for w in glued if w not in LEGAL_FORMS)


def postcode_key(postcode: str | None) -> str:
    return re.sub(r"[\s\-]+", "", (postcode or "").upper())


def email_key(email: str | None) -> str:
    return (email or "").strip().casefold()


def email_valid(email: str | None) -> bool:
    return bool(_EMAIL.match((email or "").strip()))


def gocardless_language(exact_language: str | None) -> str:
    """Exact's language ("NL", "nl-NL", "EN") → a GoCardless code, or "" when unsupported."""
    code = (exact_language or "").strip().lower().replace("_", "-").split("-")[0]
    code = _LANGUAGE_ALIASES.get(code, code)
    return code if code in GOCARDLESS_LANGUAGES else ""


def template_language(language: str | None) -> str:
    return language if language in TEMPLATE_LANGUAGES else "en"


def country_code(exact_country: str | None) -> str:
    """Exact's country as the ISO code GoCardless requires, or "" (left out of what we send:
    GoCardless refuses a country it does not know, and the first two letters of a name such
    as "Netherlands" would be another country)."""
    return iso_country(exact_country)
