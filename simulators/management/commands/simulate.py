"""Run the Exact Online and GoCardless simulators as local servers.

    manage.py simulate [--only exact|gocardless] [--exact-port 8101] [--gocardless-port 8102]
                       [--auto-consent] [--gocardless-webhook-url URL]

They bind to 127.0.0.1 only: they accept any control request and must never be reachable
from another machine.
"""

import logging
import signal
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    # The simulators use neither the product's database nor its secrets: the product's
    # checks (a stored secret that does not decrypt, a custom base URL outside DEBUG) say
    # nothing about them, and must not keep them from starting.
    requires_system_checks = []

    help = "Run the Exact Online and GoCardless simulators on loopback ports."

    def add_arguments(self, parser):
        parser.add_argument("--only", choices=["exact", "gocardless"])
        parser.add_argument("--exact-port", type=int, default=8101)
        parser.add_argument("--gocardless-port", type=int, default=8102)
        parser.add_argument(
            "--auto-consent",
            action="store_true",
            help="Exact consent page approves at once (for the demo and scripted runs).",
        )
        parser.add_argument("--gocardless-webhook-url", default=None)

    def handle(self, *args, **options):
        # Started as a background job of a non-interactive shell (a script, CI), a process
        # inherits SIGINT ignored, and Ctrl-C / `kill -INT` would leave the servers running:
        # stopping them on SIGINT is what this command promises, however it was started.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        logging.getLogger("werkzeug").setLevel(logging.INFO)
        running = []
        if options["only"] in (None, "exact"):
            from simulators.exact_online import Simulator as ExactSimulator

            exact = ExactSimulator(auto_consent=options["auto_consent"])
            exact.start(port=options["exact_port"])
            running.append(exact)
            self.stdout.write(f"Exact Online simulator on {exact.url}")
        if options["only"] in (None, "gocardless"):
            from simulators.gocardless import Simulator as GoCardlessSimulator

            gocardless = GoCardlessSimulator(webhook_url=options["gocardless_webhook_url"])
            gocardless.start(port=options["gocardless_port"])
            running.append(gocardless)
            self.stdout.write(f"GoCardless simulator on {gocardless.url}")
        self.stdout.write("Press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            for simulator in running:
                simulator.stop()
