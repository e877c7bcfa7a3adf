"""The simulated hosted payment page behind ``authorisation_url`` (``/flows/{id}``).

GET shows a form prefilled from the flow; POST completes the flow like a payer would and
redirects to the flow's ``redirect_uri`` (or shows a confirmation page).
"""

from __future__ import annotations

from html import escape

from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from . import errors
from .onboarding import DEFAULT_BANK_DETAILS, complete_flow

FIELDS = ("given_name", "family_name", "company_name", "email", "address_line1", "city",
          "postal_code", "country_code", "account_holder_name", "account_number",
          "branch_code", "iban")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response(PAGE.format(title=escape(title), body=body), status=status,
                    content_type="text/html; charset=utf-8")


PAYER_FIELDS = ("given_name", "family_name", "company_name", "email")


def _amount(payment_request: dict) -> str:
    minor = payment_request["amount"]
    return f"{payment_request['currency']} {minor // 100}.{minor % 100:02d}"


def _form(state, flow: dict, billing_request: dict, customer: dict, message: str = "") -> str:
    mandate_request = billing_request["mandate_request"]
    payment_request = billing_request.get("payment_request")
    currency = (mandate_request or payment_request)["currency"]
    values = {**DEFAULT_BANK_DETAILS.get(currency, {}),
              **{k: v for k, v in customer.items() if isinstance(v, str)},
              **flow["prefilled_customer"], **flow["prefilled_bank_account"]}
    if mandate_request is None:
        wanted = list(PAYER_FIELDS)  # instant: the payer authorises at their own bank
    else:
        wanted = [f for f in FIELDS if not (currency == "EUR" and f in ("account_number",
                                                                         "branch_code"))
                  and not (currency != "EUR" and f == "iban")]
    rows = "".join(
        f'<p><label>{f}<input name="{f}" value="{escape(str(values.get(f) or ""))}"></label></p>'
        for f in wanted)
    note = f'<p role="alert">{escape(message)}</p>' if message else ""
    creditor = escape(state.creditor_name)
    if payment_request is not None and mandate_request is None:
        what = (f"<p>Pay {escape(_amount(payment_request))} to {creditor} from your bank "
                f"({escape(payment_request['scheme'])}): "
                f"{escape(payment_request.get('description') or '')}</p>")
        button = "Pay with my bank"
    elif payment_request is not None:
        what = (f"<p>Pay {escape(_amount(payment_request))} to {creditor} by Direct Debit "
                f"({escape(mandate_request['scheme'])}): "
                f"{escape(payment_request.get('description') or '')}</p>")
        button = "Set up Direct Debit and pay"
    else:
        what = (f"<p>Set up a {escape(currency)} Direct Debit with {creditor} "
                f"({escape(mandate_request['scheme'])}).</p>")
        button = "Set up Direct Debit"
    return (f'{note}{what}<form method="post">{rows}<button type="submit">{escape(button)}'
            "</button></form>")


class HostedPage:
    def __init__(self, sim) -> None:
        self.sim = sim

    def __call__(self, environ, start_response):
        request = Request(environ)
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        self.sim.tick()
        flow_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        with self.sim.state.lock:
            state = self.sim.organisations.holding(flow_id).state  # the flow's organisation
            flow = state.resources["billing_request_flows"].get(flow_id)
            if flow is None:
                return _page("Page not found", "<p>This link is not valid.</p>", 404)
            billing_request = state.get("billing_requests", flow["links"]["billing_request"])
            customer = state.get("customers", billing_request["links"]["customer"])
            paying = billing_request.get("payment_request") is not None
            title = "Pay your invoice" if paying else "Set up a Direct Debit"
            if billing_request["status"] == "fulfilled":
                if paying:
                    return _page("Already paid", "<p>This payment is already made.</p>")
                return _page("Already set up", "<p>This Direct Debit is already set up.</p>")
            if billing_request["status"] == "cancelled":
                return _page("Link cancelled", "<p>This link is no longer valid.</p>", 410)
            if state.clock.now() > flow["_expires"]:
                return _page("Link expired", "<p>This link has expired.</p>", 410)
            if request.method != "POST":
                return _page(title, _form(state, flow, billing_request, customer))
            payer = {f: request.form.get(f, "").strip() for f in FIELDS}
            try:
                made = complete_flow(state, flow_id, payer)
            except errors.ApiError as exc:
                problems = "; ".join(f"{e.get('field', '')} {e['message']}" for e in exc.errors)
                return _page(title, _form(state, flow, billing_request, customer, problems), 422)
        if flow["redirect_uri"]:
            return redirect(flow["redirect_uri"], code=303)
        if made["id"].startswith("PM"):
            return _page("Payment made",
                         f"<p>Thank you: your payment is made (payment {escape(made['id'])}).</p>")
        return _page("Direct Debit set up",
                     f"<p>Your Direct Debit is set up (mandate {escape(made['id'])}).</p>")
