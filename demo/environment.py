"""The demo's environment: the public address that follows ``DEMO_ADDR``, and the ``.env`` that
`make demo` leaves behind so that README's operator commands work against the demo afterwards.

Plain Python (no Django): ``scripts/demo.sh`` runs it before Django starts::

    python -m demo.environment base-url 127.0.0.1:8765   # -> http://127.0.0.1:8765
    python -m demo.environment allowed-hosts 0.0.0.0:8765
    python -m demo.environment write-env .env             # from the current environment

The settings read ``.env`` from the project root (environment variables win over it). The
demo writes one only when there is none, or when the one there is the demo's own (its first
line is ``MARKER``); a ``.env`` someone wrote themselves is never touched.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MARKER = "# ml-connector demo environment: written by `make demo` (demo/environment.py)."
# What README's commands need to work on the demo's database: DEBUG (the development keys
# that encrypted the demo's stored tokens; the demo app), the simulators' Exact app
# credentials (mlc.E003 stops every command without them once a tenant is connected), and the
# address webhook and callback URLs are built from.
VARIABLES = (
    "DEBUG",
    "EXACT_CLIENT_ID",
    "EXACT_CLIENT_SECRET",
    "EXACT_WEBHOOK_SECRET",
    "PUBLIC_BASE_URL",
)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
# runserver on every interface: a browser on this machine reaches it on loopback.
EVERY_INTERFACE = ("", "0.0.0.0", "::", "0")  # noqa: S104 (read, never bound to)
DEFAULT_PORT = "8000"


def addr_split(addr: str) -> tuple[str, str]:
    """``runserver``'s address argument (``8765``, ``127.0.0.1:8765``, ``[::1]:8765``,
    ``0.0.0.0:8765``, ``localhost``) → (host, port); host "" when only a port is given."""
    addr = (addr or "").strip()
    if addr.startswith("["):  # [::1]:8765
        host, _, rest = addr[1:].partition("]")
        return host, rest.lstrip(":") or DEFAULT_PORT
    if addr.isdigit():
        return "", addr
    if addr.count(":") == 1:
        host, port = addr.split(":")
        return host, port or DEFAULT_PORT
    return addr, DEFAULT_PORT


def base_url(addr: str) -> str:
    """The address a browser on this machine uses for the admin ``runserver`` serves on
    ``addr``: webhook and callback URLs are built from it (``PUBLIC_BASE_URL``)."""
    host, port = addr_split(addr)
    if host in EVERY_INTERFACE:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def allowed_hosts(addr: str) -> str:
    """``ALLOWED_HOSTS`` for the demo: loopback, plus the host of ``addr`` when it is another
    name (the settings' DEBUG default allows loopback only)."""
    host, _port = addr_split(addr)
    hosts = ["127.0.0.1", "localhost"]
    if host not in (*LOOPBACK_NAMES, *EVERY_INTERFACE) and host not in hosts:
        hosts.append(host)
    return ",".join(hosts)


def env_file_text(values: dict[str, str]) -> str:
    lines = [
        MARKER,
        "# README's operator commands read it (python manage.py tenants list, ...). Running",
        "# `make demo` again rewrites it. To keep it as your own, delete the first line:",
        "# `make demo` then leaves it alone. Never use these values in production.",
    ]
    lines += [f"{name}={values[name]}" for name in VARIABLES if values.get(name) is not None]
    return "\n".join(lines) + "\n"


def env_file_write(path: Path, values: dict[str, str]) -> tuple[bool, str]:
    """Write the demo's ``.env`` at ``path`` unless someone else's is there.
    Returns (written, what to tell the person)."""
    if path.exists():
        first = path.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
        if first != [MARKER]:
            needed = " ".join(f"{n}={values[n]}" for n in VARIABLES if values.get(n) is not None)
            return False, (
                f"{path} was not written by the demo: left as it is. For README's operator "
                f"commands against the demo, set: {needed}"
            )
    path.write_text(env_file_text(values), encoding="utf-8")
    return True, (
        f"Wrote {path} (the demo's environment: README's operator commands now work against "
        "the demo, e.g. `.venv/bin/python manage.py tenants list`)."
    )


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "base-url":
        print(base_url(argv[1]))
        return 0
    if len(argv) == 2 and argv[0] == "allowed-hosts":
        print(allowed_hosts(argv[1]))
        return 0
    if len(argv) == 2 and argv[0] == "write-env":
        _written, message = env_file_write(Path(argv[1]), dict(os.environ))
        print(message)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
