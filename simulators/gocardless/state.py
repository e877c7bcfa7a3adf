"""The simulator's in-memory world: resources, events, idempotency keys, counters.

Everything lives in plain dicts shaped like the API's JSON so rendering is a copy. Keys that
start with ``_`` are the simulator's own bookkeeping (timetables, retry counts) and are
stripped before anything leaves the process. One re-entrant lock guards it all: handlers,
the daily processing and scenarios run under it, network I/O (webhook delivery) never does.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime

from . import errors
from .clock import iso_timestamp
from .schemes import SCHEMES

RESOURCE_TYPES = (
    "creditors",
    "customers",
    "customer_bank_accounts",
    "mandates",
    "billing_requests",
    "billing_request_flows",
    "payments",
    "refunds",
    "payouts",
    "subscriptions",
    "instalment_schedules",
)

ID_PREFIXES = {
    "creditors": "CR",
    "customers": "CU",
    "customer_bank_accounts": "BA",
    "mandates": "MD",
    "billing_requests": "BRQ",
    "billing_request_flows": "BRF",
    "payments": "PM",
    "refunds": "RF",
    "payouts": "PO",
    "subscriptions": "SB",
    "instalment_schedules": "IS",
    "events": "EV",
    "webhooks": "WB",
    "mandate_requests": "MRQ",
    "payment_requests": "PRQ",
    "customer_billing_details": "CBD",
}

# ``source`` of events nobody's API call caused (timetables, banks, payers, scenarios): our
# choice, the reference only lists the types app | user | gc_team | access_token.
GOCARDLESS_SOURCE = {"type": "gc_team", "name": "GoCardless"}

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, like GoCardless ids


def _encode(number: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 32)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits)).rjust(12, "0")


def public(resource: dict) -> dict:
    """A deep copy without the simulator's private ``_`` keys."""
    return {k: copy.deepcopy(v) for k, v in resource.items() if not k.startswith("_")}


class IdCounter:
    """Where ids come from; organisations share one, so ids are unique across them."""

    def __init__(self) -> None:
        self.value = 0


class State:
    """One organisation's world. Several organisations' States share one lock and one
    ``IdCounter`` (handed in by the first), so ``state.lock`` of any of them guards all."""

    def __init__(self, clock, *, organisation_id: str, creditor_id: str, schemes,
                 creditor_name: str = "Simulated Creditor Ltd", number: int = 1,
                 lock=None, ids: IdCounter | None = None) -> None:
        self.lock = lock or threading.RLock()
        self.clock = clock
        self.organisation_id = organisation_id
        self.creditor_id = creditor_id
        self.creditor_name = creditor_name
        self.number = number  # 1 for the first organisation; used in its creditor's references
        self.schemes = tuple(schemes)
        self._owns_ids = ids is None
        self.ids = ids or IdCounter()
        self.event_listeners: list[Callable[[dict], None]] = []
        # Who is making the current API call ({"type", "name"}); set by the app around a
        # handler, so events the call causes (origin "api") carry it as their ``source``.
        self.request_source: dict | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.resources: dict[str, dict[str, dict]] = {t: {} for t in RESOURCE_TYPES}
            self.events: list[dict] = []
            self.events_by_id: dict[str, dict] = {}
            if self._owns_ids:
                self.ids.value = 0
            # (access token, key) -> (resource type, id); kept for the simulator's lifetime.
            self.idempotency: dict[tuple[str, str], tuple[str, str]] = {}
            self.payout_items: dict[str, list[dict]] = {}
            # Debits and credits (late failures, chargebacks, refunds...) per currency that
            # wait for the next payout.
            self.unsettled: dict[str, list[dict]] = defaultdict(list)
            self.processed_through: date = self.clock.today()
            self.call_counts: Counter[tuple[str, str, int]] = Counter()
            self.rate_windows: dict[str, tuple[datetime, int]] = {}
            self._add_creditor()

    # -- ids and storage -------------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        self.ids.value += 1
        return ID_PREFIXES[kind] + _encode(self.ids.value)

    def now_iso(self) -> str:
        return iso_timestamp(self.clock.now())

    def add(self, kind: str, resource: dict) -> dict:
        self.resources[kind][resource["id"]] = resource
        return resource

    def get(self, kind: str, resource_id: str) -> dict:
        try:
            return self.resources[kind][resource_id]
        except KeyError:
            raise errors.not_found() from None

    def find(self, kind: str, resource_id: str | None) -> dict | None:
        return self.resources[kind].get(resource_id) if resource_id else None

    def newest_first(self, kind: str) -> list[dict]:
        return list(reversed(self.resources[kind].values()))

    # -- events ----------------------------------------------------------------------------

    def emit(
        self,
        resource_type: str,
        action: str,
        links: dict,
        details: dict,
        *,
        resource: dict | None = None,
        metadata: dict | None = None,
        at: datetime | None = None,
    ) -> dict:
        """Record an event (and hand it to the webhook dispatcher)."""
        if details.get("origin") == "api" and self.request_source:
            source = dict(self.request_source)
        else:
            source = dict(GOCARDLESS_SOURCE)
        event = {
            "id": self.new_id("events"),
            "created_at": iso_timestamp(at or self.clock.now()),
            "resource_type": resource_type,
            "action": action,
            "links": {k: v for k, v in links.items() if v},
            "details": {k: v for k, v in details.items() if v is not None},
            "metadata": dict(metadata or {}),
            "resource_metadata": dict((resource or {}).get("metadata") or {}),
            "source": source,
        }
        self.events.append(event)
        self.events_by_id[event["id"]] = event
        for listener in self.event_listeners:
            listener(event)
        return event

    # -- the organisation's creditor --------------------------------------------------------

    def _add_creditor(self) -> None:
        created = self.now_iso()
        self.add("creditors", {
            "id": self.creditor_id,
            "created_at": created,
            "name": self.creditor_name,
            "address_line1": "1 Simulation Street",
            "address_line2": None,
            "address_line3": None,
            "city": "London",
            "region": None,
            "postal_code": "EC1V 7LQ",
            "country_code": "GB",
            "creditor_type": "company",
            "logo_url": None,
            "verification_status": "successful",
            "can_create_refunds": True,
            "fx_payout_currency": None,
            "mandate_imports_enabled": False,
            "custom_payment_pages_enabled": True,
            "merchant_responsible_for_notifications": False,
            "bank_reference_prefix": "SIMCR" if self.number == 1 else f"SIMC{self.number}",
            "scheme_identifiers": [
                {
                    "scheme": name,
                    "name": self.creditor_name,
                    "reference": f"SIM-{name.upper()}-{self.number:03d}",
                    "currency": SCHEMES[name].currency,
                    "minimum_advance_notice": SCHEMES[name].lead_days,
                    "can_specify_mandate_reference": True,
                    "status": "active",
                }
                for name in self.schemes
            ],
            "links": {
                f"default_{SCHEMES[name].currency.lower()}_payout_account":
                    f"BA{name.upper()[:4]}CR{self.number:02d}"
                for name in self.schemes
            },
        })
