"""Admin for finance staff: collection runs, their lines, and the payment attempts.

Everything here is read-only (runs, lines and attempts are written by the services only);
what staff *do* goes through the services, which check the state and write the audit entry:

- runs (``runs.py``): the list and a run's page; *Collect now* (``run_start``) and *Approve*
  on a preview awaiting approval (``run_approve``), both behind a confirmation page
  (``run_actions.py``);
- lines (``lines.py``): one row per invoice a run evaluated, with its decision and reason;
- attempts (``attempts.py``): *Retry now*, *Cancel* and *Mark resolved*
  (``reconciliation.collection.actions``); Cancel and Mark resolved ask for a reason first;
- the failure table and the payment-links switch (``failures.py``), edited by a company's
  administrators; payment links (``pay_links.py``), cancelled by operators.

A service's refusal (``RunRefused`` / ``ActionRefused``) becomes a message, never a 500.
Operators and admins act; viewers read. Scoping to the user's companies is
``TenantScopedAdmin``'s (querysets, actions); the custom views start from ``get_queryset``
too, so another company's run is a 404 whatever id is posted.

Django's autodiscovery imports this package; importing the screens registers them.
"""

from reconciliation.collection.admin import (  # noqa: F401 (registers)
    attempts,
    failures,
    lines,
    pay_links,
    runs,
)
