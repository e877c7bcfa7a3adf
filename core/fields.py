"""Encrypted model fields for secrets at rest.

django-fernet-encrypted-fields derives Fernet keys from SECRET_KEY (+ SECRET_KEY_FALLBACKS)
and SALT_KEY. Its fields silently hand back the *ciphertext* when no key decrypts a value;
for a credential that would mean sending ciphertext to a provider as a token and getting a
confusing 401. Our subclass raises instead, naming the field, so a key mix-up is obvious.
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from encrypted_fields.fields import EncryptedTextField


class SecretDecryptionError(RuntimeError):
    pass


@lru_cache(maxsize=8)
def _fernet(secret_keys: tuple[str, ...], salt_keys: tuple[str, ...]) -> MultiFernet:
    """One key derivation per (key, salt) pair per process, shared by every secret field.

    Same derivation and order as django-fernet-encrypted-fields (PBKDF2-SHA256, 100,000
    iterations; the first key encrypts, all decrypt), so values stay compatible. The library
    derives per field instance (~20 ms each); sharing means a web worker pays once, at start
    (config/wsgi.py warms it), not on its first webhook.
    """
    keys = []
    for secret_key in secret_keys:
        for salt_key in salt_keys:
            kdf = PBKDF2HMAC(
                algorithm=hashes.SHA256(), length=32, salt=salt_key.encode(), iterations=100_000
            )
            keys.append(Fernet(base64.urlsafe_b64encode(kdf.derive(secret_key.encode()))))
    return MultiFernet(keys)


def secret_fernet() -> MultiFernet:
    salts = settings.SALT_KEY if isinstance(settings.SALT_KEY, list) else [settings.SALT_KEY]
    salts = [salt for salt in salts if salt]
    if not salts or not settings.SECRET_KEY:
        # Said in words at the first use (a web worker warms this at start): without it a
        # gunicorn start or a webhook ended in cryptography's "MultiFernet requires at least
        # one Fernet instance" traceback.
        raise ImproperlyConfigured(
            "mlc.E001: SALT_KEY (and SECRET_KEY) must be set: every stored token and secret is "
            "encrypted with keys derived from them. Set both, and keep them with your backups."
        )
    fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", [])
    return _fernet((settings.SECRET_KEY, *fallbacks), tuple(salts))


class EncryptedSecretField(EncryptedTextField):
    """A text secret stored Fernet-encrypted; empty means "not set"."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("blank", True)
        kwargs.setdefault("null", True)
        kwargs.setdefault("editable", True)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        try:
            return self.f.decrypt(value.encode("utf-8")).decode("utf-8")
        except InvalidToken as exc:
            raise SecretDecryptionError(
                f"{self.model.__name__}.{self.name} cannot be decrypted with the configured "
                "SECRET_KEY/SECRET_KEY_FALLBACKS and SALT_KEY"
            ) from exc

    @property
    def f(self) -> MultiFernet:
        # Looked up on every use, so a changed SECRET_KEY/SALT_KEY (rotation in tests, or
        # override_settings) takes effect without restarting; derivation stays cached.
        return secret_fernet()
