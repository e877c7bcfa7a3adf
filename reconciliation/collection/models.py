"""Models (filled in by the feature work)."""
