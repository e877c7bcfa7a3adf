"""Posting a booking to Exact exactly once.

1. Claim (short transaction, row lock): skip what is confirmed, in flight, not due or waiting
   for the booking it follows; build the body; mark it ``sent`` with ``outcome_unknown`` set
   and commit. No lock is held during HTTP, and a second worker sees ``sent`` and leaves it.
2. If the previous attempt's outcome was unknown (timeout, reset, 5xx, process killed after
   sending), look the entry up in Exact by the booking's reference first; found = confirmed.
3. POST; record the answer (confirmed with the entry id, or failed with a backoff). A claim
   older than ``LEASE`` is considered abandoned (the worker died): the sweeper takes it over,
   and because ``outcome_unknown`` is still set, it looks up before sending.

Background posting never sleeps on Exact's minute (``wait_for_budget=False``): when the
division's 60 calls of this minute are spent, the claim is handed back as if never made (no
attempt counted, the previous state and ``outcome_unknown`` restored, no error shown) with
``next_retry_at`` = the minute's reset, and the worker moves on to another company's work
(company_posting.py; docs/scale.md, "Fairness"). A person's *Re-post* still waits for the
minute: they asked for this booking now.

Nothing is posted for an inactive tenant (tenants/activity.py): its bookings keep their state,
attempts and retry time untouched, and the sweeper posts them once the tenant is active again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from core.audit import Actor, audit_record
from core.display import counted, local_date_display, minor_display
from exact.client import ExactClient
from exact.errors import (
    ExactApiError,
    ExactConnectionUnavailable,
    ExactError,
    ExactServerError,
    ExactTransportError,
)
from exact.locks import lock_row
from exact.models import ExactConnection
from exact.odata import string_literal
from exact.ratelimit import ExactRateBudgetBusy
from tenants.activity import inactive_tenants_log, of_active_tenants, tenant_skip
from tenants.alerts import (
    ALERT_LOOKBACK,
    ALERT_REPEAT_AFTER,
    admin_url,
    alert_new_objects_by_tenant,
)

from .models import Booking, BookingState, Rule
from .payout_facts import payout_facts_refresh
from .rules import BANK_ENTRIES, RuleError, entry_body

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 8
BACKOFF = [
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
]
NOT_USABLE_WAIT = timedelta(minutes=15)
WAIT_FOR_PREDECESSOR = timedelta(minutes=1)
LINES_BY_KIND = {BANK_ENTRIES: "financialtransaction/BankEntryLines"}


def backoff(attempts: int) -> timedelta:
    return BACKOFF[min(max(attempts - 1, 0), len(BACKOFF) - 1)]


def entry_lookup(*, api: ExactClient, reference: str) -> dict | None:
    """The entry whose lines carry ``reference`` in Notes, or None. OData cannot filter an
    entry on its lines, so we ask the lines endpoint (docs/simulator-exact.md)."""
    rows = api.iter_rows(
        LINES_BY_KIND[BANK_ENTRIES],
        select=["EntryID", "EntryNumber", "Notes"],
        filter=f"Notes eq {string_literal(reference)}",
    )
    for row in rows:
        if row.get("EntryID"):
            return {"EntryID": row["EntryID"], "EntryNumber": row.get("EntryNumber")}
    return None


@dataclass
class _Claim:
    """A booking this worker may send: state ``sent``, the body built, committed."""

    booking: Booking
    body: dict
    must_look_up: bool  # the previous attempt's outcome is unknown: look the entry up first
    connection: ExactConnection
    state_before: str  # what a put-off claim goes back to (budget busy: as if never claimed)
    # ... and the claim before it: a booking whose last sender died (``sent``, its claim
    # older than LEASE) is due by that old claim; put back without it, it was due by nothing
    # (``sent`` with no claim) and never posted (found by the chaos month, docs/chaos.md).
    claimed_before: datetime | None = None


# What ``booking_post`` returns, in the words a person reads after *Re-post*.
OUTCOME_WORDS = {
    "posted": "posted to Exact",
    "found": "found in Exact (an earlier post had gone through) and confirmed",
    "confirmed already": "already confirmed in Exact, so it is never posted again",
    "in flight": "being posted right now by the background job; not posted twice",
    "tenant inactive": "its company is deactivated: nothing is posted until it is activated",
    "needs attention": "it gave up after repeated failures; only Re-post sends it again",
    "not due": "its next try is not due yet",
    "budget busy": "Exact's API budget for this administration is spent for this minute; it is "
    "posted after the minute's reset",
    "waiting for predecessor": "it waits until the booking it follows is confirmed in Exact",
    "exact not usable": "Exact Online is not connected or is paused; it is posted once it is",
    "waiting for receipts": "the payout waits until the receipts of its payments are booked",
    "failed: cannot build": "the entry could not be built (see its last error)",
    "failed: refused": "Exact refused the entry (see its last error)",
    "failed: outcome unknown": "Exact's answer was unclear; it is looked up before the next try",
    "failed: lookup": "looking the entry up in Exact failed; it is tried again later",
    "failed: connection": "the Exact connection could not be used; it is tried again later",
    "failed": "posting failed (see its last error); it is tried again later",
}
# Outcomes in which a re-post request was refused before anything was done: no audit entry.
REPOST_REFUSED = ("confirmed already", "in flight", "tenant inactive")


def booking_post(
    *,
    booking_pk: int,
    api: ExactClient | None = None,
    now=None,
    force: bool = False,
    actor: Actor | None = None,
    requested: bool = False,
    wait_for_budget: bool = True,
) -> str:
    """Post one booking if it is due; returns what happened (for logs and tests; in words:
    ``OUTCOME_WORDS``). ``requested``: a person's *Re-post*, audited once it is accepted.
    ``wait_for_budget=False`` (background posting): with the division's minute spent, put the
    booking off to the reset ("budget busy") instead of sleeping; applies to the client made
    here (a client handed in as ``api`` brings its own setting)."""
    now = now or timezone.now()
    actor = actor or Actor.system("bookings")
    claim = _claim(booking_pk, now=now, force=force, actor=actor, requested=requested)
    if isinstance(claim, str):
        return claim  # not sent: why, for logs and tests
    api = api or ExactClient(claim.connection, wait_for_budget=wait_for_budget)
    return _send(claim, api=api, now=now, actor=actor)


def _claim(
    booking_pk: int, *, now, force: bool, actor: Actor, requested: bool = False
) -> _Claim | str:
    """Step 1, in one short transaction under the row lock: the claim, or why not now."""
    with transaction.atomic():
        booking = _lock_booking(booking_pk, with_company=True)
        not_now = _not_now(booking, now=now, force=force)
        if not_now:
            return not_now  # nothing happened: a refused re-post is not audited
        if requested:
            # Under the lock: audited only when the request is accepted (what follows
            # changes the booking: a post, or a new time to try).
            audit_record(
                actor=actor,
                action="booking.repost_requested",
                tenant=booking.tenant,
                obj=booking,
                before={"state": booking.state, "attempts": booking.attempts},
                message=f"Re-post of {booking.key} requested",
            )
        if booking.after_id and booking.after.state != BookingState.CONFIRMED:
            # A predecessor that needs attention may take a while: check less often.
            stuck = booking.after.state == BookingState.GAVE_UP
            _wait(
                booking,
                until=now + (NOT_USABLE_WAIT if stuck else WAIT_FOR_PREDECESSOR),
                why=f"waiting for {booking.after.key}" + (" (needs attention)" if stuck else ""),
            )
            return "waiting for predecessor"
        connection = _company_part(booking, "exact_connection")
        if connection is None or not connection.is_usable:
            _wait(
                booking,
                until=now + NOT_USABLE_WAIT,
                why="Exact connection is not usable (not connected or paused)",
            )
            return "exact not usable"
        if booking.rule == Rule.PAYOUT:
            reason = payout_facts_refresh(booking=booking, now=now)
            if reason:
                _wait(booking, until=now + WAIT_FOR_PREDECESSOR, why=reason)
                return "waiting for receipts"
        payout_side = booking.after if booking.after_id else None
        if booking.rule == Rule.PAYOUT_BANK and payout_side and payout_side.rule == Rule.PAYOUT:
            # The bank side is the same payout: it carries the facts its payout entry was
            # posted with (refreshed when the receipts came in after the payout), not the copy
            # made when the payout was paid, which may name our payments as not ours (found
            # by the chaos month: money equal, the bank side's facts not).
            booking.facts = dict(payout_side.facts)
        body = _body(booking, now=now, actor=actor)
        if body is None:
            return "failed: cannot build"
        must_look_up, state_before = booking.outcome_unknown, booking.state
        claimed_before = booking.claimed_at
        booking.state = BookingState.SENT
        booking.claimed_at = now
        booking.attempts += 1
        booking.request_body = body
        booking.outcome_unknown = True  # until the answer is saved
        booking.save(update_fields=CLAIMED_FIELDS)
    return _Claim(
        booking=booking,
        body=body,
        must_look_up=must_look_up,
        connection=connection,
        state_before=state_before,
        claimed_before=claimed_before,
    )


def _lock_booking(booking_pk: int, *, with_company: bool = False) -> Booking:
    """``exact.locks.lock_row`` for a booking, its tenant read in the same query (the
    inactive-tenant check and the audit entry need it: two queries a post saved). Only the
    booking's row is locked (``of=("self",)``): never the tenant's. ``with_company``: the
    claim's reads of the company's Exact connection and booking settings come in the same
    query too (two more a post; read under the same lock as before, so just as fresh)."""
    if db_connection.vendor != "postgresql":
        return lock_row(Booking, booking_pk)  # SQLite: its write lock up front
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("_lock_booking() must run inside transaction.atomic()")
    related = ["tenant"] + (list(COMPANY_PARTS.values()) if with_company else [])
    return Booking.objects.select_related(*related).select_for_update(of=("self",)).get(
        pk=booking_pk
    )


# The company's one-to-one parts a claim reads (``_company_part``).
COMPANY_PARTS = {
    "exact_connection": "tenant__exact_connection",
    "booking_settings": "tenant__booking_settings",
}


def _company_part(booking: Booking, name: str):
    """The booking's company's Exact connection or booking settings, or None: from the
    claim's locking query on PostgreSQL, else read now."""
    try:
        return getattr(booking.tenant, name)
    except ObjectDoesNotExist:
        return None


def _not_now(booking: Booking, *, now, force: bool) -> str | None:
    """Why the locked booking is not to be posted now (nothing is changed), or None."""
    state = booking.state
    if state == BookingState.CONFIRMED:
        return "confirmed already"
    if state == BookingState.SENT and booking.claimed_at and booking.claimed_at > now - LEASE:
        return "in flight"
    if tenant_skip(booking.tenant, job="booking post", what=booking.key):
        return "tenant inactive"  # untouched, also by a forced re-post
    if not force:
        if state == BookingState.GAVE_UP:
            return "needs attention"
        if state in (BookingState.PENDING, BookingState.FAILED) and (
            booking.next_retry_at and booking.next_retry_at > now
        ):
            return "not due"
    return None


def _wait(booking: Booking, *, until, why: str) -> None:
    """Not yet: try again at ``until``; no attempt is used."""
    booking.next_retry_at = until
    booking.last_error = why
    booking.save(update_fields=["next_retry_at", "last_error", "updated_at"])


def _body(booking: Booking, *, now, actor: Actor) -> dict | None:
    """The entry's body, or None when it cannot be built (recorded as a failed attempt)."""
    settings = _company_part(booking, "booking_settings")
    try:
        if settings is None:
            raise RuleError("booking settings missing")
        return entry_body(booking, settings)
    except (RuleError, KeyError) as exc:
        _fail(
            booking,
            f"cannot build the entry: {exc}",
            now=now,
            # An earlier unknown outcome stays unknown: it must still be looked up.
            unknown=booking.outcome_unknown,
            actor=actor,
            count=True,
        )
        return None


def _send(claim: _Claim, *, api: ExactClient, now, actor: Actor) -> str:
    """Steps 2 and 3, no lock held: look up an unknown outcome, else POST; record the answer."""
    booking_pk, must_look_up = claim.booking.pk, claim.must_look_up
    sent = False
    try:
        if must_look_up:
            found = entry_lookup(api=api, reference=claim.booking.reference)
            if found:
                return _confirm(booking_pk, found, now=now, actor=actor, by_lookup=True)
        sent = True
        created = api.post(BANK_ENTRIES, claim.body)
    except ExactRateBudgetBusy as exc:
        # Raised before a request left (or on a 429, which Exact did not process): nothing
        # was sent, so the claim is handed back untouched but for the time to try again.
        _put_off(claim, until=exc.reset_at)
        return "budget busy"
    except (ExactTransportError, ExactServerError) as exc:
        # No answer, or 5xx (Exact also answers some validation errors with 500): the entry
        # may exist. Keep outcome_unknown, so the next attempt looks it up first.
        _fail_pk(booking_pk, str(exc), now=now, unknown=True, actor=actor)
        return "failed: outcome unknown" if sent else "failed: lookup"
    except ExactConnectionUnavailable as exc:
        _fail_pk(booking_pk, str(exc), now=now, unknown=must_look_up, actor=actor)
        return "failed: connection"
    except ExactApiError as exc:
        # A 4xx answer to the POST: Exact refused it, nothing was written (a 4xx to the
        # lookup GET leaves the question open). Anything else after sending (an unreadable
        # 2xx body, say) may have written the entry.
        refused = exc.status is not None and 400 <= exc.status < 500
        unknown = (must_look_up and not sent) or (sent and not refused)
        _fail_pk(booking_pk, str(exc), now=now, unknown=unknown, actor=actor)
        return "failed: refused" if refused else "failed: outcome unknown"
    except ExactError as exc:
        _fail_pk(booking_pk, str(exc), now=now, unknown=must_look_up or sent, actor=actor)
        return "failed"
    if not created.get("EntryID"):
        _fail_pk(
            booking_pk, "Exact answered without an EntryID", now=now, unknown=True, actor=actor
        )
        return "failed: outcome unknown"
    return _confirm(booking_pk, created, now=now, actor=actor, by_lookup=False)


def _put_off(claim: _Claim, *, until) -> None:
    """Undo a claim whose call never left (the division's minute is spent): the state,
    attempts and ``outcome_unknown`` from before it, tried again at ``until``. No attempt is
    counted and ``last_error`` is left alone: waiting for the minute is not a failure, and a
    person reading the booking sees no error for it. Only our own claim is undone."""
    booking_pk = claim.booking.pk
    with transaction.atomic():
        booking = _lock_booking(booking_pk)
        if booking.state != BookingState.SENT or booking.claimed_at != claim.booking.claimed_at:
            return  # not ours any more (cannot happen within the lease; never undo another's)
        booking.state = claim.state_before
        booking.attempts = max(booking.attempts - 1, 0)
        booking.outcome_unknown = claim.must_look_up
        booking.claimed_at = claim.claimed_before
        booking.next_retry_at = until
        booking.save(
            update_fields=[
                "state",
                "attempts",
                "outcome_unknown",
                "claimed_at",
                "next_retry_at",
                "updated_at",
            ]
        )
    logger.info(
        "booking %s: Exact's minute for division %s is spent; put off to %s (not an attempt)",
        claim.booking.key,
        claim.connection.division,
        until.isoformat(),
    )


# What a claim changes (a full save would write every column of every post's booking).
CLAIMED_FIELDS = [
    "state",
    "claimed_at",
    "attempts",
    "request_body",
    "outcome_unknown",
    "facts",  # a payout's, refreshed or copied from its payout side
    "updated_at",
]

CONFIRMED_FIELDS = [
    "state",
    "exact_entry_id",
    "exact_entry_number",
    "outcome_unknown",
    "found_by_lookup",
    "last_error",
    "next_retry_at",
    "confirmed_at",
    "updated_at",
]


def _confirm(booking_pk: int, entry: dict, *, now, actor: Actor, by_lookup: bool) -> str:
    with transaction.atomic():
        booking = _lock_booking(booking_pk)
        before = booking.state
        booking.state = BookingState.CONFIRMED
        booking.exact_entry_id = entry["EntryID"]
        booking.exact_entry_number = entry.get("EntryNumber")
        booking.outcome_unknown = False
        booking.found_by_lookup = by_lookup
        booking.last_error = ""
        booking.next_retry_at = None
        booking.confirmed_at = now
        booking.save(update_fields=CONFIRMED_FIELDS)
        audit_record(
            actor=actor,
            action="booking.confirmed",
            tenant=booking.tenant,
            obj=booking,
            before={"state": before},
            after={"state": booking.state, "exact_entry_id": str(booking.exact_entry_id)},
            message=f"{booking.key} is Exact entry {booking.exact_entry_number}"
            + (" (found by its reference after an unknown outcome)" if by_lookup else ""),
        )
    return "found" if by_lookup else "posted"


def _fail_pk(booking_pk: int, error: str, *, now, unknown: bool, actor: Actor) -> None:
    with transaction.atomic():
        _fail(_lock_booking(booking_pk), error, now=now, unknown=unknown, actor=actor)


def _fail(
    booking: Booking, error: str, *, now, unknown: bool, actor: Actor, count: bool = False
) -> None:
    if count:
        booking.attempts += 1
    before = booking.state
    gave_up = booking.attempts >= MAX_ATTEMPTS
    booking.state = BookingState.GAVE_UP if gave_up else BookingState.FAILED
    booking.last_error = error[:2000]
    booking.outcome_unknown = unknown
    booking.claimed_at = None
    booking.next_retry_at = None if gave_up else now + backoff(booking.attempts)
    booking.save()
    audit_record(
        actor=actor,
        action="booking.failed",
        tenant=booking.tenant,
        obj=booking,
        before={"state": before},
        after={"state": booking.state, "attempts": booking.attempts, "outcome_unknown": unknown},
        message=f"{booking.key}: {error[:500]}",
    )
    logger.warning("booking %s failed (attempt %s): %s", booking.key, booking.attempts, error)


def booking_repost(*, booking: Booking, actor: Actor, api: ExactClient | None = None) -> str:
    """Admin *Re-post*: posted now even if failed for good, audited with the user
    (``booking.repost_requested``) once the request is accepted. Exactly-once still holds:
    a confirmed booking is left alone, an unknown outcome is looked up first. A refusal
    (confirmed already, in flight, company inactive: ``REPOST_REFUSED``) changes nothing
    and writes no audit entry; the person reads why (``OUTCOME_WORDS``)."""
    return booking_post(booking_pk=booking.pk, api=api, force=True, actor=actor, requested=True)


def bookings_due(*, now=None, active_only: bool = True):
    """Bookings to post now, oldest first; only of active tenants unless ``active_only`` is
    False (the others wait, untouched, until their tenant is activated again)."""
    now = now or timezone.now()
    due = Booking.objects.filter(
        Q(state__in=[BookingState.PENDING, BookingState.FAILED])
        & (Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now))
        | Q(state=BookingState.SENT, claimed_at__lt=now - LEASE)
    ).order_by("id")
    return of_active_tenants(due) if active_only else due


def bookings_sweep(*, now=None, limit: int = 50, api_factory=None) -> dict[str, int]:
    """Post due bookings in this process: company by company in turn (each company's first
    due booking, then each one's second, ...; oldest first within a company, so a receipt
    goes before its reversal), never sleeping on Exact's minute: a company whose division
    has spent it is passed over for the rest of the sweep, its due bookings put off to the
    reset. ``limit`` keeps one sweep short. The scheduled job hands out one turn per company
    to the workers instead (company_posting.bookings_hand_out); this is the same rule in
    one process (tests, a shell)."""
    now = now or timezone.now()
    outcomes: dict[str, int] = {}
    inactive_tenants_log(bookings_due(now=now, active_only=False), job="bookings sweep")
    busy: set[int] = set()
    for pk, tenant_id in _round_robin(bookings_due(now=now), limit=limit):
        if tenant_id in busy:
            continue
        api = api_factory(pk) if api_factory else None
        try:
            outcome = booking_post(
                booking_pk=pk,
                api=api,
                now=now,
                actor=Actor.schedule("bookings.sweep"),
                wait_for_budget=False,
            )
        except Exception:  # one bad booking must not stop the others
            logger.exception("booking %s: unexpected error while posting", pk)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "budget busy":
            busy.add(tenant_id)
            until = Booking.objects.filter(pk=pk).values_list("next_retry_at", flat=True)[0]
            company_put_off(tenant_id=tenant_id, until=until, now=now)
    try:
        bookings_gave_up_alert(now=now)
    except Exception:  # the next sweep tries again; the posting above went through
        logger.exception("bookings: alerting about bookings that gave up failed")
    return outcomes


def company_put_off(*, tenant_id: int, until, now) -> int:
    """Every due booking of the company waits for ``until`` (its division's minute is
    spent). Only the time to try again changes: no attempt, no error (_put_off)."""
    return Booking.objects.filter(
        Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now),
        tenant_id=tenant_id,
        state__in=[BookingState.PENDING, BookingState.FAILED],
    ).update(next_retry_at=until)


def _round_robin(due, *, limit: int) -> list[tuple[int, int]]:
    """(pk, tenant) of up to ``limit`` due bookings, interleaved across companies: the
    company waiting longest first, each company's own oldest first."""
    companies = [
        row["tenant_id"]
        for row in due.order_by()
        .values("tenant_id")
        .annotate(first=Min("id"))
        .order_by("first")[:limit]
    ]
    queues = [
        list(due.filter(tenant_id=t).values_list("pk", "tenant_id")[:limit]) for t in companies
    ]
    order: list[tuple[int, int]] = []
    for rank in range(limit):
        order += [queue[rank] for queue in queues if rank < len(queue)]
        if len(order) >= limit or not any(rank + 1 < len(queue) for queue in queues):
            break
    return order[:limit]


def bookings_gave_up_alert(*, now=None) -> int:
    """E-mail each active tenant's administrators the bookings that gave up (needs
    attention after ``MAX_ATTEMPTS``) and were not e-mailed yet (tenants/alerts.py): at most
    one e-mail per tenant per ``ALERT_REPEAT_AFTER``, each booking listed once, also when a
    re-post fails again. The sweeper calls it, so bookings posted by tasks are covered too."""
    now = now or timezone.now()
    gave_up = of_active_tenants(
        Booking.objects.filter(state=BookingState.GAVE_UP, updated_at__gte=now - ALERT_LOOKBACK)
    )
    return alert_new_objects_by_tenant(
        candidates=gave_up.defer("facts", "request_body").order_by("-id"),
        subject=lambda n: f"{counted(n, 'booking')} could not be posted to Exact Online",
        what=(
            f"ml-connector stopped trying to post these entries to Exact Online after "
            f"{MAX_ATTEMPTS} attempts. They are not in your administration until they are "
            "posted, and later bookings of the same payment or payout wait for them:"
        ),
        line=lambda b: (
            f"{b.sentence()} ({minor_display(b.amount_minor, b.currency)}, "
            f"{local_date_display(b.booking_date)}): {b.last_error[:200]}"
        ),
        todo=(
            "open the bookings below, fix what the last error says (for example a closed "
            "period or a blocked G/L account in Exact, or the booking settings), then select "
            'them and run "Re-post selected bookings to Exact". A re-post never books an '
            "entry twice."
        ),
        link=admin_url(
            "admin:bookings_booking_changelist", query=f"state__exact={BookingState.GAVE_UP}"
        ),
        quiet_since=now - ALERT_REPEAT_AFTER,
        kind="booking.gave_up",
    )
