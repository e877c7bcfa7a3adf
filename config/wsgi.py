import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Derive the encryption keys of stored secrets now (PBKDF2, ~20 ms a key) rather than on the
# first webhook this worker answers.
from core.fields import secret_fernet  # noqa: E402

secret_fernet()

# Import the URLconf now, and with it every view module and what they import, then move
# everything start-up created out of the garbage collector's reach. Otherwise each full
# (generation 2) collection walks those ~100,000 long-lived objects: ~40 ms, about once every
# 24 webhook batches, which was the whole p99 of the webhook intake (in-process: p99 54 ms ->
# 17 ms, p50 unchanged; docs/gocardless.md "Webhook intake benchmark"). Frozen objects are
# never collected, which is what module-level objects are anyway.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018 - the import is the point
gc.collect()
gc.freeze()
