"""Validating a tenant's booking settings against its Exact division (financial/Journals and
financial/GLAccounts), resolving the codes people type to the guids entries need."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone

from exact.client import ExactClient
from exact.errors import ExactError
from exact.models import ExactConnection

from .models import BookingSettings

JOURNAL_BANK = 12
GL_RECEIVABLES = 20


def _clean(code) -> str:
    # Exact right-aligns codes to 18 characters ("            1300").
    return str(code or "").strip()


def exact_ledger_read(*, api: ExactClient) -> tuple[dict, dict]:
    journals = {
        _clean(j["Code"]): j
        for j in api.iter_rows(
            "financial/Journals", select=["ID", "Code", "Type", "GLAccount", "Description"]
        )
    }
    gls = {
        _clean(g["Code"]): g
        for g in api.iter_rows("financial/GLAccounts", select=["ID", "Code", "Type", "Description"])
    }
    return journals, gls


def booking_settings_validate(
    *, settings: BookingSettings, api: ExactClient | None = None
) -> BookingSettings:
    """Check every code against Exact and fill ``resolved``; raises ValidationError with a
    message per field (the admin shows them on the form, never a 500). Does not save."""
    connection = ExactConnection.objects.filter(tenant_id=settings.tenant_id).first()
    if connection is None or not connection.is_usable:
        raise ValidationError(
            "Connect Exact Online (and choose the division) first: the journals and G/L "
            "accounts are checked against it."
        )
    try:
        journals, gls = exact_ledger_read(api=api or ExactClient(connection))
    except ExactError as exc:
        raise ValidationError(
            f"Could not read journals and G/L accounts from Exact: {exc}"
        ) from exc

    errors = _settings_errors(settings, journals=journals, gls=gls)
    if errors:
        raise ValidationError(errors)

    used = {getattr(settings, f) for f in BookingSettings.GL_FIELDS} - {""}
    settings.resolved = {
        "division": connection.division,
        "journals": {
            code: str(journals[code]["ID"])
            for code in (settings.clearing_journal_code, settings.bank_journal_code)
            if code
        },
        "gl": {code: str(gls[code]["ID"]).lower() for code in sorted(used)},
    }
    settings.validated_at = timezone.now()
    return settings


def _settings_errors(settings: BookingSettings, *, journals: dict, gls: dict) -> dict[str, str]:
    """A message per field whose code Exact does not have or cannot use; trims the codes."""
    errors: dict[str, str] = {}
    for field in ("clearing_journal_code", "bank_journal_code"):
        code = _clean(getattr(settings, field))
        setattr(settings, field, code)
        if not code:
            continue
        journal = journals.get(code)
        if journal is None:
            errors[field] = f"Exact has no journal {code}."
        elif journal.get("Type") != JOURNAL_BANK:
            errors[field] = (
                f"Journal {code} is type {journal.get('Type')}; a bank journal (type 12) is "
                "needed (payment-service journals are invisible to BankEntries)."
            )
    if settings.bank_journal_code and settings.bank_journal_code == settings.clearing_journal_code:
        errors["bank_journal_code"] = "The real bank journal must differ from the clearing one."
    for field in BookingSettings.GL_FIELDS:
        code = _clean(getattr(settings, field))
        setattr(settings, field, code)
        if code and code not in gls:
            errors[field] = f"Exact has no G/L account {code}."
    receivables = gls.get(settings.receivables_gl_code)
    if receivables is not None and receivables.get("Type") != GL_RECEIVABLES:
        errors["receivables_gl_code"] = (
            f"G/L {settings.receivables_gl_code} is not a receivables (debtors, type 20) account."
        )
    transfer = gls.get(settings.transfer_gl_code)
    if transfer is not None and transfer.get("Type") == GL_RECEIVABLES:
        errors["transfer_gl_code"] = "The in-transit account cannot be a debtors account."
    return errors
