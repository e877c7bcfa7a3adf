"""Money events booked into Exact exactly once, payout reconciliation and the month-end report."""
