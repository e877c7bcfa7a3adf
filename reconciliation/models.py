"""No models: the business areas are apps of their own (collection, bookings, customers) and
the audit trail lives in core/. See apps.py for why this app is still installed."""
