"""Webhook delivery: batching, signing, retries, chaos (duplicates, reordering, and the
random drops, duplicates and delays of simulators/webhook_chaos.py), a log.

Events are queued as they are emitted (only while webhooks are enabled and a URL is set).
``deliver`` batches the queue, POSTs each batch signed with HMAC-SHA256 of the exact body
bytes, and schedules failed deliveries (non-2xx, redirect, timeout, connection error) for a
retry on the simulated clock. The HTTP calls happen outside the state lock, so a receiver
may call back into the API while handling a webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from simulators.webhook_chaos import WebhookChaos

from .clock import iso_timestamp

# Retry n (1-based) happens this long after attempt n failed: the support article gives
# "1 minute, 2 minutes, 10 minutes etc." for up to 8 retries; the tail is our choice.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 2, 10, 30, 60, 180, 360, 720))
USER_AGENT = "gocardless-webhook-service/1.1"
RESPONSE_BODY_LOG_LIMIT = 2_000
DELIVERY_LOG_LIMIT = 10_000  # newest attempts kept; a long benchmark must not grow without end


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


@dataclass(eq=False)
class Delivery:
    webhook_id: str
    body: bytes
    event_ids: list[str]
    attempts: int = 0
    next_attempt_at: datetime | None = None
    done: bool = False
    log: list[dict] = field(default_factory=list)


class WebhookDispatcher:
    def __init__(self, state, *, url=None, secret="sim-webhook-secret", origin=None) -> None:
        self.state = state
        self.url = url
        self.secret = secret
        self.origin = origin or "https://api-sandbox.gocardless.com"
        self.enabled = True
        self.batch_size = 50
        self.timeout_seconds = 10.0
        self.duplicate = False
        self.reorder = False
        # (organisation id, event) in emission order.
        self._queue: list[tuple[str, dict]] = []
        self._retrying: list[Delivery] = []
        self.log: deque[dict] = deque(maxlen=DELIVERY_LOG_LIMIT)
        self._send_lock = threading.Lock()  # one delivery round at a time
        self.chaos = WebhookChaos(self._send_held, name="gocardless-sim-webhook-chaos")
        self.watch(state)

    def watch(self, state, active: Callable[[], bool] | None = None) -> None:
        """Queue the events of one organisation's ``state`` (which shares the lock of the
        dispatcher's). ``active``: only while it answers True (an organisation that is
        connected to the partner app)."""
        organisation = state.organisation_id

        def on_event(event: dict) -> None:
            if self.enabled and self.url and (active is None or active()):
                self._queue.append((organisation, event))

        state.event_listeners.append(on_event)

    def reset(self) -> None:
        with self.state.lock:
            self._queue.clear()
            self._retrying.clear()
            self.log.clear()
        self.chaos.forget()

    def config(self) -> dict:
        return {
            "url": self.url, "enabled": self.enabled, "batch_size": self.batch_size,
            "timeout_seconds": self.timeout_seconds, "duplicate": self.duplicate,
            "reorder": self.reorder, "queued_events": len(self._queue),
            "retrying_deliveries": len(self._retrying),
        }

    def configure(self, **options) -> dict:
        with self.state.lock:
            for key in ("url", "secret", "enabled", "batch_size", "timeout_seconds",
                        "duplicate", "reorder"):
                if options.get(key) is not None:
                    setattr(self, key, options[key])
            if not self.enabled:
                # Switched off: nothing is sent, now or later (events stay listable).
                self._queue.clear()
                self._retrying.clear()
                self.chaos.discard_held()
            return self.config()

    def _batches(self, now: datetime) -> tuple[list[Delivery], list[Delivery]]:
        """(new batches from the queue, the retries that are due); state lock held."""
        queued = list(reversed(self._queue)) if self.reorder else list(self._queue)
        self._queue.clear()
        # One organisation per webhook: events of different accounts never share a batch.
        by_organisation: dict[str, list[dict]] = {}
        for organisation, event in queued:
            by_organisation.setdefault(organisation, []).append(event)
        fresh = []
        for organisation, events in by_organisation.items():
            for start in range(0, len(events), self.batch_size):
                chunk = events[start:start + self.batch_size]
                webhook_id = self.state.new_id("webhooks")
                payload = {
                    "events": [{**e, "links": {**e["links"], "organisation": organisation}}
                               for e in chunk],
                    "meta": {"webhook_id": webhook_id},
                }
                body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
                fresh.append(Delivery(webhook_id, body, [e["id"] for e in chunk]))
        due = [d for d in self._retrying if d.next_attempt_at <= now]
        return fresh, due

    def deliver(self) -> list[tuple[int | None, list[str]]]:
        """Send queued batches and due retries now; returns (status, event ids) per POST
        sent now (not those webhook chaos dropped or held back)."""
        with self._send_lock:
            with self.state.lock:
                if not (self.enabled and self.url):
                    return []
                url, secret = self.url, self.secret
                fresh, due = self._batches(self.state.clock.now())
            deliveries = self._apply_chaos(fresh, url, secret) + due
            results = []
            for delivery in deliveries:
                copies = 2 if self.duplicate else 1
                for _ in range(copies):
                    status = self._post(delivery, url, secret)
                    results.append((status, list(delivery.event_ids)))
            with self.state.lock:
                self._reschedule(deliveries)
            return results

    def _apply_chaos(self, fresh: list[Delivery], url: str, secret: str) -> list[Delivery]:
        """The new deliveries to send now. Chaos touches first attempts only: a dropped one
        is done without a POST (so never retried: a lost webhook, healed by polling
        /events); a delayed one and a duplicate's copy are held for the background thread."""
        now = []
        for delivery in fresh:
            fate = self.chaos.fate()
            if fate.drop:
                delivery.done = True
                continue
            if fate.copy_delay is not None:
                self.chaos.hold((delivery, url, secret), fate.copy_delay, copy=True)
            if fate.delay is not None:
                self.chaos.hold((delivery, url, secret), fate.delay, copy=False)
            else:
                now.append(delivery)
        return now

    def _send_held(self, item: tuple[Delivery, str, str], copy: bool) -> None:
        """Send a delivery webhook chaos held back. A delayed original is retried like any
        on failure; a duplicate's copy is an extra and never is."""
        delivery, url, secret = item
        with self._send_lock:
            self._post(delivery, url, secret)
            if not copy:
                with self.state.lock:
                    self._settle(delivery, delivery.log[-1]["successful"],
                                 self.state.clock.now())

    def _post(self, delivery: Delivery, url: str, secret: str) -> int | None:
        headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "Origin": self.origin,
            "Webhook-Signature": sign(delivery.body, secret),
        }
        entry = {
            "webhook_id": delivery.webhook_id, "url": url, "event_ids": delivery.event_ids,
            "attempt": delivery.attempts + 1,
            "sent_at": iso_timestamp(self.state.clock.now()),
            "request_headers": headers, "request_body": delivery.body.decode("utf-8"),
            "response_code": None, "response_body": None, "error": None, "successful": False,
        }
        try:
            response = requests.post(url, data=delivery.body, headers=headers,
                                     timeout=self.timeout_seconds, allow_redirects=False)
        except requests.RequestException as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        else:
            entry["response_code"] = response.status_code
            entry["response_body"] = response.text[:RESPONSE_BODY_LOG_LIMIT]
            entry["successful"] = 200 <= response.status_code < 300
        delivery.log.append(entry)
        with self.state.lock:
            self.log.append(entry)
        self.chaos.count_sent()
        return entry["response_code"]

    def _reschedule(self, deliveries: list[Delivery]) -> None:
        now = self.state.clock.now()
        for delivery in deliveries:
            attempts = delivery.log[-1:] if not self.duplicate else delivery.log[-2:]
            self._settle(delivery, any(entry["successful"] for entry in attempts), now)

    def _settle(self, delivery: Delivery, successful: bool, now: datetime) -> None:
        """After an attempt: done, or scheduled for its next retry; state lock held."""
        delivery.attempts += 1
        if successful or delivery.attempts > len(RETRY_DELAYS):
            delivery.done = True
        else:
            delivery.next_attempt_at = now + RETRY_DELAYS[delivery.attempts - 1]
        if delivery.done and delivery in self._retrying:
            self._retrying.remove(delivery)
        elif not delivery.done and delivery not in self._retrying:
            self._retrying.append(delivery)
