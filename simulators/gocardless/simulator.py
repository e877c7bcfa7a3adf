"""``Simulator``: the GoCardless API stand-in with its in-process control methods."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

from werkzeug.datastructures import MultiDict

from simulators.harness import SimulatorServer, run_every
from simulators.webhook_chaos import WebhookChaosControl

from . import errors, lifecycle, plans, scenarios
from .app import ApiApp, Call
from .clock import SimClock, iso_timestamp
from .consent import OAuthApp
from .control import ControlApp
from .faults import Faults
from .hosted_page import HostedPage
from .oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS, OAuthServer
from .onboarding import complete_flow
from .organisations import Organisation, Organisations
from .payments import new_payment
from .payouts import render_item
from .resources import new_bank_account, new_customer, new_mandate, render_mandate
from .schemes import SCHEMES
from .state import State, public
from .webhooks import WebhookDispatcher


class Simulator(WebhookChaosControl):
    def __init__(
        self,
        *,
        access_tokens=("sim-access-token",),
        webhook_secret="sim-webhook-secret",
        webhook_url=None,
        rate_limit_per_minute=1000,
        organisation_id="OR000SIM",
        creditor_id="CR000SIM",
        organisation_name="Simulated Creditor Ltd",
        organisation_email="owner@simulated-creditor.test",
        organisations=(),
        schemes=("bacs", "sepa_core"),
        oauth_client_id=DEFAULT_CLIENT_ID,
        oauth_client_secret=DEFAULT_CLIENT_SECRET,
        oauth_redirect_uris=DEFAULT_REDIRECT_URIS,
        consent="interactive",
        clock=None,
    ) -> None:
        """``access_tokens`` belong to the first organisation (``organisation_id``);
        ``organisations``: more accounts, dicts of ``add_organisation`` arguments, there
        from the start and again after ``reset``. ``oauth_*`` / ``consent``: the partner
        app and the consent page (docs/simulator-gocardless.md, "Partner OAuth")."""
        unknown = set(schemes) - set(SCHEMES)
        if unknown:
            raise ValueError(f"unknown schemes: {sorted(unknown)}")
        self.access_tokens = frozenset(access_tokens)
        self.rate_limit_per_minute = rate_limit_per_minute
        self.clock = clock or SimClock()
        self.state = State(self.clock, organisation_id=organisation_id, creditor_id=creditor_id,
                           schemes=schemes, creditor_name=organisation_name)
        self.organisations = Organisations(Organisation(
            id=organisation_id, name=organisation_name, email=organisation_email,
            state=self.state))
        self.oauth = OAuthServer(self.clock, client_id=oauth_client_id,
                                 client_secret=oauth_client_secret,
                                 redirect_uris=oauth_redirect_uris, consent=consent)
        self.faults = Faults()
        self.webhooks = WebhookDispatcher(self.state, url=webhook_url, secret=webhook_secret)
        self._extra_organisations = [dict(spec) for spec in organisations]
        for spec in self._extra_organisations:
            self.add_organisation(**spec)
        self._api = ApiApp(self)
        self._oauth_app = OAuthApp(self)
        self._control = ControlApp(self)
        self._hosted_page = HostedPage(self)
        self._server: SimulatorServer | None = None
        self._auto_deliver: threading.Event | None = None

    # -- serving ------------------------------------------------------------------------

    def wsgi_app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_control/"):
            return self._control(environ, start_response)
        if path.startswith("/flows/"):
            return self._hosted_page(environ, start_response)
        if path.startswith("/oauth/"):
            return self._oauth_app(environ, start_response)
        return self._api(environ, start_response)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        self._server = SimulatorServer(self.wsgi_app, host=host, port=port).start()
        self.webhooks.origin = self._server.url
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "simulator not started"
        return self._server.url

    def stop(self) -> None:
        self.set_auto_deliver(None)
        self.webhooks.chaos.close()
        if self._server is not None:
            self._server.stop()
            self._server = None

    # -- time ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Run the scheduled work of every day the clock has moved into."""
        today = self.clock.today()
        with self.state.lock:
            for organisation in self.organisations:
                lifecycle.process_until(organisation.state, today)
                plans.settle(organisation.state)

    def advance(self, days: float = 0, seconds: float = 0) -> dict:
        """Move the clock, run the days' work, then deliver due webhooks."""
        if not hasattr(self.clock, "advance"):
            raise TypeError("this clock cannot be advanced")
        self.clock.advance(days=days, seconds=seconds)
        self.tick()
        deliveries = self.deliver_webhooks()
        return {"now": iso_timestamp(self.clock.now()), "deliveries": len(deliveries)}

    # -- rate limiting (window = the current minute of the simulated clock) --------------

    def _window(self) -> datetime:
        return self.clock.now().replace(second=0, microsecond=0)

    def take_rate(self, token: str) -> bool:
        window = self._window()
        with self.state.lock:
            start, used = self.state.rate_windows.get(token, (window, 0))
            if start != window:
                used = 0
            if used >= self.rate_limit_per_minute:
                self.state.rate_windows[token] = (window, used)
                return False
            self.state.rate_windows[token] = (window, used + 1)
            return True

    def rate_status(self, token: str | None) -> tuple[int, int, datetime]:
        window = self._window()
        with self.state.lock:
            start, used = self.state.rate_windows.get(token, (window, 0))
        if start != window:
            used = 0
        return (self.rate_limit_per_minute, max(self.rate_limit_per_minute - used, 0),
                window + timedelta(minutes=1))

    def set_rate_limit(self, per_minute: int) -> None:
        self.rate_limit_per_minute = int(per_minute)

    # -- control ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all data, issued codes and tokens and the organisations added since
        start; keep configuration (webhook URL, OAuth app, consent mode, rate limit)."""
        with self.state.lock:
            self.organisations.drop_all_but_primary()
            self.state.reset()
            self.oauth.forget()
            for spec in self._extra_organisations:
                self.add_organisation(**spec)
        self.webhooks.reset()  # webhook chaos off, held sends forgotten, counts zeroed
        self.faults.clear()
        self.faults.dice.forget()  # API chaos off, counts zeroed

    # -- organisations and partner OAuth ------------------------------------------------

    def add_organisation(self, *, id=None, name=None, email=None, creditor_id=None,
                         schemes=None) -> dict:
        """Another GoCardless account with its own creditor and data; returns its
        description ({"id", "name", "email", "creditor_id", "schemes"}). Ids default to
        OR000SIM<n> / CR000SIM<n>."""
        unknown = set(schemes or ()) - set(SCHEMES)
        if unknown:
            raise ValueError(f"unknown schemes: {sorted(unknown)}")
        with self.state.lock:
            organisation = self.organisations.add(
                clock=self.clock, schemes=tuple(schemes) if schemes else None,
                organisation_id=id, name=name, email=email, creditor_id=creditor_id)
            org_id = organisation.id
            self.webhooks.watch(organisation.state, lambda: self.oauth.connected(org_id))
            return organisation.describe()

    def organisations_list(self) -> list[dict]:
        with self.state.lock:
            return [o.describe() for o in self.organisations]

    def grant(self, access_token: str) -> tuple[Organisation, str] | None:
        """(organisation, scope) an API bearer token acts for; None if unknown/revoked."""
        if access_token in self.access_tokens:
            return self.organisations.primary, "read_write"
        with self.state.lock:
            token = self.oauth.live_token(access_token)
            if token is None:
                return None
            organisation = self.organisations.get(token.organisation_id)
            return (organisation, token.scope) if organisation is not None else None

    def configure_oauth(self, **changes) -> dict:
        """client_id, client_secret, redirect_uris, app_name, consent (interactive | allow |
        deny), consent_organisation; returns the settings."""
        with self.state.lock:
            if changes.get("consent_organisation") is not None:
                self.organisations.require(changes["consent_organisation"])
            return self.oauth.configure(**changes)

    def oauth_tokens(self) -> list[dict]:
        """Every access token issued through OAuth, oldest first (revoked ones too)."""
        with self.state.lock:
            return [t.describe() for t in self.oauth.tokens.values()]

    def revoke_token(self, access_token: str) -> dict:
        with self.state.lock:
            return self.oauth.revoke(access_token)

    def state_of(self, organisation_id: str | None = None) -> State:
        """The State of one organisation (None: the first)."""
        return self.organisations.require(organisation_id).state

    def seed(self, *, customers=(), mandates=(), payments=(), bulk=None,
             organisation=None) -> dict:
        """Create resources directly (no events): pre-existing state for tests and benches.

        customers: [{given_name, family_name, email, company_name, metadata, ...}]
        mandates:  [{customer?: CU id, scheme="bacs", status="active", metadata, reference,
                     customer fields when no customer is given}]
        payments:  [{mandate: MD id, amount, status="pending_submission", charge_date?,
                     reference, metadata, retry_if_possible, description}]
        bulk:      {"count": N, "scheme": "bacs", "status": "active"} -> N customers, each
                   with a bank account and a mandate.
        organisation: OR… whose data this is (default: the first organisation).
        """
        created: dict[str, list[str]] = {"customers": [], "customer_bank_accounts": [],
                                         "mandates": [], "payments": []}
        with self.state.lock:
            state = self.state_of(organisation)
            self.tick()
            for fields in customers:
                created["customers"].append(self._seed_customer(state, fields)["id"])
            specs = list(mandates)
            if bulk:
                specs += [{"scheme": bulk.get("scheme", "bacs"),
                           "status": bulk.get("status", "active"),
                           "given_name": "Bulk", "family_name": f"Customer {n + 1}",
                           "email": f"bulk-{n + 1}@example.test"}
                          for n in range(int(bulk["count"]))]
            for spec in specs:
                mandate = self._seed_mandate(state, spec, created)
                created["mandates"].append(mandate["id"])
            for spec in payments:
                created["payments"].append(self._seed_payment(state, spec)["id"])
        return created

    @staticmethod
    def _seed_customer(state, fields: dict) -> dict:
        fields = dict(fields)
        metadata = fields.pop("metadata", None)
        if not (fields.get("company_name") or fields.get("family_name")):
            fields.setdefault("given_name", "Seeded")
            fields.setdefault("family_name", "Customer")
        return new_customer(state, fields, metadata)

    def _seed_mandate(self, state, spec: dict, created: dict) -> dict:
        scheme = spec.get("scheme", "bacs")
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}")
        customer_id = spec.get("customer")
        if customer_id is None:
            fields = {k: v for k, v in spec.items() if k in (
                "given_name", "family_name", "company_name", "email")}
            customer_id = self._seed_customer(state, fields)["id"]
            created["customers"].append(customer_id)
        customer = state.get("customers", customer_id)
        holder = customer["company_name"] or (
            f"{customer['given_name'] or ''} {customer['family_name'] or ''}".strip())
        account = new_bank_account(state, customer_id, SCHEMES[scheme].currency, holder)
        created["customer_bank_accounts"].append(account["id"])
        return new_mandate(state, customer_id, account["id"], scheme,
                           status=spec.get("status", "active"), metadata=spec.get("metadata"),
                           reference=spec.get("reference"))

    @staticmethod
    def _seed_payment(state, spec: dict) -> dict:
        mandate = state.get("mandates", spec["mandate"])
        charge = spec.get("charge_date")
        return new_payment(
            state, mandate, int(spec["amount"]),
            charge_date=date.fromisoformat(charge) if isinstance(charge, str) else charge,
            reference=spec.get("reference"), description=spec.get("description"),
            metadata=spec.get("metadata"), retry_if_possible=spec.get("retry_if_possible", False),
            status=spec.get("status", "pending_submission"),
        )

    def create_subscription(self, params: dict, *, organisation: str | None = None,
                            source: dict | None = None) -> dict:
        """A subscription set up outside the product (the merchant's dashboard, another
        integration): same rules and events as ``POST /subscriptions``, events with
        ``source`` = ``source`` (default: a dashboard user). Returns it as the API renders it;
        validation errors raise ``errors.ApiError``."""
        return self._create_plan(plans.subscriptions_create, "subscriptions", params,
                                 organisation, source)

    def create_instalment_schedule(self, params: dict, *, organisation: str | None = None,
                                   source: dict | None = None) -> dict:
        """Like ``create_subscription`` for ``POST /instalment_schedules`` (instalments as a
        list of {charge_date, amount} or as {start_date, interval_unit, interval, amounts})."""
        return self._create_plan(plans.instalment_schedules_create, "instalment_schedules",
                                 params, organisation, source)

    def _create_plan(self, handler, kind, params, organisation, source) -> dict:
        self.tick()
        with self.state.lock:
            state = self.state_of(organisation)
            state.request_source = dict(source or {"type": "user",
                                                   "name": self.organisations_list()[0]["email"]})
            try:
                _, body = handler(state, Call(None, {kind: params}, MultiDict(), ""))
            finally:
                state.request_source = None
        return body[kind]

    def run_scenario(self, name: str, resource_id: str) -> None:
        self.tick()
        with self.state.lock:
            scenarios.run(self.organisations.holding(resource_id).state, name, resource_id)

    def fail_payment(self, payment_id: str, cause: str) -> dict:
        """Simulator only (no such sandbox scenario): the payer's bank fails the payment with
        ``cause`` (e.g. ``mandate_cancelled``), submitting it first when it is pending."""
        self.tick()
        with self.state.lock:
            state = self.organisations.holding(payment_id).state
            payment = state.get("payments", payment_id)
            if payment["status"] not in ("pending_submission", "submitted"):
                raise errors.invalid_state("invalid_state_for_scenario",
                                           f"payment is {payment['status']}")
            now = self.clock.now()
            if payment["status"] == "pending_submission":
                lifecycle.payment_submit(state, payment, now)
            lifecycle.payment_fail(state, payment, now, cause=cause)
            return public(payment)

    def complete_billing_request_flow(self, flow_id: str, **payer) -> dict:
        """What the payer does on the hosted page; returns the new mandate (or, for an
        instant payment request, the payment)."""
        self.tick()
        with self.state.lock:
            state = self.organisations.holding(flow_id).state
            made = complete_flow(state, flow_id, payer)
            return render_mandate(state, made) if made["id"].startswith("MD") else public(made)

    def inject(self, kind: str, count: int = 1, *, seconds: float = 0.0, ms: int | None = None,
               method: str | None = None, path: str | None = None) -> dict:
        """Queue a fault for the next ``count`` matching API calls.

        kind: error_500 | html_502 | timeout (sleep ``seconds``, default 11, unprocessed) |
        rate_limit | drop_response (processed, connection reset) | latency (``ms`` on every
        call from now on, 0 to stop) | clear (drop all faults and latency).
        """
        if kind == "latency":
            self.faults.latency_ms = int(ms or 0)
        elif kind == "clear":
            self.faults.clear()
        else:
            self.faults.add(kind, count, seconds=seconds, method=method, path=path)
        return self.faults.describe()

    def call_counts(self) -> dict[str, dict[str, int]]:
        """{"POST /payments": {"201": 3, "409": 1}, ...} -- per method, path template, status."""
        counts: dict[str, dict[str, int]] = {}
        with self.state.lock:
            for (method, template, status), n in sorted(self.state.call_counts.items()):
                counts.setdefault(f"{method} {template}", {})[str(status)] = n
        return counts

    # -- webhooks -----------------------------------------------------------------------

    def deliver_webhooks(self) -> list[tuple[int | None, list[str]]]:
        return self.webhooks.deliver()

    def set_webhook_url(self, url: str | None, secret: str | None = None) -> None:
        with self.state.lock:
            self.webhooks.url = url
            if secret is not None:
                self.webhooks.secret = secret

    def set_webhooks_enabled(self, enabled: bool) -> None:
        self.webhooks.configure(enabled=bool(enabled))

    def configure_webhooks(self, **options) -> dict:
        """batch_size, timeout_seconds, duplicate (send every batch twice), reorder (newest
        events and batches first), url, secret, enabled."""
        return self.webhooks.configure(**options)

    def webhook_log(self) -> list[dict]:
        with self.state.lock:
            return [dict(entry) for entry in self.webhooks.log]

    def set_auto_deliver(self, interval_seconds: float | None) -> None:
        """Deliver webhooks from a background thread every interval (for the demo)."""
        if self._auto_deliver is not None:
            self._auto_deliver.set()
            self._auto_deliver = None
        if interval_seconds:
            stop = threading.Event()
            run_every(interval_seconds, self.deliver_webhooks, stop=stop,
                      name="gocardless-sim-webhooks")
            self._auto_deliver = stop

    # -- reading state ------------------------------------------------------------------

    def events(self, organisation: str | None = None) -> list[dict]:
        """Every event of one organisation (default: the first), oldest first."""
        with self.state.lock:
            return [dict(event) for event in self.state_of(organisation).events]

    def resource(self, kind: str, resource_id: str | None = None,
                 organisation: str | None = None):
        """One resource (of whichever organisation has it), or all of a kind of one
        organisation (default: the first), oldest first, as the API would render them."""
        with self.state.lock:
            if resource_id is not None and organisation is None:
                state = self.organisations.holding(resource_id).state
            else:
                state = self.state_of(organisation)
            if kind == "payout_items":
                return [render_item(i) for i in state.payout_items.get(resource_id, [])]
            render = {"mandates": lambda r: render_mandate(state, r),
                      "subscriptions": lambda r: plans.render_subscription(state, r)}.get(
                          kind, public)
            if resource_id is not None:
                return render(state.get(kind, resource_id))
            return [render(r) for r in state.resources[kind].values()]
