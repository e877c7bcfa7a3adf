"""The storage object of a third-party Exact client (PyPI ``exactonline``) pointed at this
simulator: the peer's documented extension point, ``get``/``set`` by (section, option), in
memory. Shared by the peer-client contract tests and the Exact sync bench's side-by-side
(``exactonline`` is a test dependency: import this module only where it is installed)."""

from __future__ import annotations

from exactonline.storage.base import ExactOnlineConfig, MissingSetting


class PeerStorage(ExactOnlineConfig):
    def __init__(self, base: str, *, redirect_uri: str, iteration_limit: int = 50) -> None:
        self.data = {
            ("server", "auth_url"): f"{base}/api/oauth2/auth",
            ("server", "rest_url"): f"{base}/api",
            ("server", "token_url"): f"{base}/api/oauth2/token",
            ("application", "base_url"): redirect_uri,
            ("application", "client_id"): "sim-client-id",
            ("application", "client_secret"): "sim-client-secret",
            # The peer stops reading after this many pages.
            ("application", "iteration_limit"): str(iteration_limit),
        }

    def get(self, section, option):
        try:
            return self.data[(section, option)]
        except KeyError:
            raise MissingSetting(option) from None

    def set(self, section, option, value):
        self.data[(section, option)] = value
