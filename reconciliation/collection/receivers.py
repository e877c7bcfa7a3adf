"""Subscriptions to GoCardless domain signals and Exact sync runs."""


def connect() -> None:
    pass
