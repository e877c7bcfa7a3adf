"""Outgoing webhooks: Exact's payload, its HashCode signature and the empty validation POST.

Notifications are queued when something changes and sent by ``deliver()`` — called by tests
for deterministic delivery, or by an optional background thread (the demo). Webhook chaos
(simulators/webhook_chaos.py) may drop, duplicate or delay event notifications (never the validation
POST).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import requests

from simulators.harness import run_every
from simulators.webhook_chaos import WebhookChaos

# Topics Exact documents (API-NOTES §7.2); others are refused at subscription time.
TOPICS = {
    "Accounts", "BankAccounts", "BankEntries", "CashEntries", "Contacts", "CostTransactions",
    "Documents", "GeneralJournalEntries", "GLAccounts", "GoodsDeliveries", "Items",
    "ProjectPlanning", "PurchaseEntries", "PurchaseOrders", "Quotations", "SalesEntries",
    "SalesInvoices", "SalesOrders", "StockPositions", "Subscriptions", "TimeTransactions",
}

DELIVERY_TIMEOUT = 5.0


def hash_code(content: bytes, secret: str) -> str:
    """Upper-case hex HMAC-SHA256 of the raw Content bytes (API-NOTES §7.4)."""
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest().upper()


def event_body(content: dict, secret: str) -> bytes:
    """Compact JSON, ``/`` unescaped, signature over exactly the Content bytes sent."""
    raw = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    return b'{"Content":' + raw + b',"HashCode":"' + hash_code(raw, secret).encode() + b'"}'


def event_created_on(now: datetime) -> str:
    """``2020-01-06T16:26:08.587``: milliseconds, no offset (we send UTC)."""
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}"


@dataclass
class _Pending:
    url: str
    body: bytes
    kind: str  # "validation" | "event"
    summary: dict


class WebhookSender:
    def __init__(self, secret: str, clock) -> None:
        self.secret = secret
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: deque[_Pending] = deque()
        self.log: list[dict] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.chaos = WebhookChaos(self._send_held, name="exact-sim-webhook-chaos")

    def queue_validation(self, url: str) -> None:
        with self._lock:
            self._pending.append(_Pending(url, b"", "validation", {}))

    def queue_event(self, url: str, content: dict) -> None:
        summary = {k: content[k] for k in ("Topic", "Division", "Action", "Key")}
        with self._lock:
            self._pending.append(_Pending(url, event_body(content, self.secret), "event", summary))

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self.log.clear()

    def deliver(self) -> list[tuple[str, int | None]]:
        """POST everything queued now, in order; a failure is logged, not retried. Returns
        (url, status) of the POSTs made now (not those webhook chaos dropped or held)."""
        with self._lock:
            batch = list(self._pending)
            self._pending.clear()
        results = []
        for item in batch:
            if item.kind == "event":
                fate = self.chaos.fate()
                if fate.drop:
                    continue
                if fate.copy_delay is not None:
                    self.chaos.hold(item, fate.copy_delay, copy=True)
                if fate.delay is not None:
                    self.chaos.hold(item, fate.delay, copy=False)
                    continue
            results.append((item.url, self._post(item)))
        return results

    def _send_held(self, item: _Pending, copy: bool) -> None:
        self._post(item, copy=copy)

    def _post(self, item: _Pending, *, copy: bool = False) -> int | None:
        headers = {"Content-Type": "application/json"} if item.body else {}
        status, error = None, None
        try:
            resp = requests.post(item.url, data=item.body, headers=headers,
                                 timeout=DELIVERY_TIMEOUT)
            status = resp.status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.log.append({"url": item.url, "kind": item.kind, **item.summary,
                             "body": item.body.decode(), "status": status, "error": error,
                             "at": self.clock.now().isoformat(), "copy": copy})
        self.chaos.count_sent()
        return status

    def start_background(self, interval: float = 1.0) -> None:
        """Deliver every ``interval`` wall-clock seconds (Exact sends within ~1 s to minutes)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = run_every(interval, self.deliver, stop=self._stop,
                                 name="exact-sim-webhooks")

    def close(self) -> None:
        """Stop both background threads (delivery and webhook chaos); held sends are lost."""
        self.stop_background()
        self.chaos.close()

    def stop_background(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
