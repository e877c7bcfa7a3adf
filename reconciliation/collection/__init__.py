"""The collection engine: open Exact receivables become GoCardless payments, exactly once."""
