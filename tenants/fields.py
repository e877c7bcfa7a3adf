"""Encrypted model fields for secrets at rest.

django-fernet-encrypted-fields derives Fernet keys from SECRET_KEY (+ SECRET_KEY_FALLBACKS)
and SALT_KEY. Its fields silently hand back the *ciphertext* when no key decrypts a value;
for a credential that would mean sending ciphertext to a provider as a token and getting a
confusing 401. Our subclass raises instead, naming the field, so a key mix-up is obvious.
"""

from cryptography.fernet import InvalidToken
from encrypted_fields.fields import EncryptedTextField


class SecretDecryptionError(RuntimeError):
    pass


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

    def reset_keys(self) -> None:
        """Forget derived keys (after SECRET_KEY/SALT_KEY rotation in-process, e.g. tests)."""
        for attr in ("keys", "f"):
            self.__dict__.pop(attr, None)
