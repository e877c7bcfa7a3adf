"""Customers and mandates aligned in both directions (issue 5).

Exact accounts ⇄ GoCardless customers (matching), mandate invitations (registration and
invitations), mandate state → link, collection and Exact (mandate_sync), Exact account
changes → GoCardless (exact_push). Design: docs/customers-and-mandates.md.
"""
