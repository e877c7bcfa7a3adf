"""Faithful local stand-ins for the Exact Online and GoCardless HTTP APIs.

Each simulator is a WSGI application with in-memory state, a controllable clock and a
control API under ``/_control/``. They are used by ``manage.py simulate``, the demo, the
tests (as live loopback servers) and the benchmarks. They never import project code that
talks to the providers: a simulator must disagree with our clients loudly, not share bugs
with them.
"""
