import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Derive the encryption keys of stored secrets now (PBKDF2, ~20 ms a key) rather than on the
# first webhook this worker answers.
from tenants.fields import secret_fernet  # noqa: E402

secret_fernet()
