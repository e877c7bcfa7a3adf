"""The finance workspace: the admin's front page as a per-company dashboard (docs/workspace.md)."""
