"""Re-encrypt every stored secret with the current SECRET_KEY / SALT_KEY.

Key rotation: put the old key in SECRET_KEY_FALLBACKS, deploy, run this command, then remove
the fallback. `--check` only proves that every secret decrypts (run it before removing a
fallback); it changes nothing.
"""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.audit import Actor, audit_record
from core.fields import EncryptedSecretField, SecretDecryptionError


def secret_models():
    for model in apps.get_models():
        fields = [f for f in model._meta.fields if isinstance(f, EncryptedSecretField)]
        if fields:
            yield model, fields


class Command(BaseCommand):
    help = "Re-encrypt stored tokens and secrets with the current key (or --check them)."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="only verify decryption")

    def handle(self, *args, **options):
        done: dict[str, int] = {}
        unreadable: list[str] = []
        for model, fields in secret_models():
            names = [f.name for f in fields]
            rows = model._default_manager.select_for_update().only("pk", *names)
            count = 0
            for pk in model._default_manager.values_list("pk", flat=True).iterator():
                try:
                    with transaction.atomic():
                        obj = rows.get(pk=pk)
                        if not options["check"]:
                            # update() runs each value through the field again, which encrypts
                            # it with the current primary key.
                            model._default_manager.filter(pk=pk).update(
                                **{name: getattr(obj, name) for name in names}
                            )
                except SecretDecryptionError:
                    unreadable.append(f"{model._meta.label}#{pk}")
                    continue
                count += 1
            done[model._meta.label] = count
        summary = ", ".join(f"{label}: {count}" for label, count in done.items())
        verb = "readable" if options["check"] else "re-encrypted"
        if not options["check"]:
            audit_record(
                actor=Actor.system("secrets_reencrypt"),
                action="secrets.reencrypted",
                after=done,
                message=f"unreadable: {len(unreadable)}",
            )
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} row(s) cannot be decrypted with any configured key: "
                + ", ".join(unreadable[:20])
            )
        self.stdout.write(f"All secrets {verb} ({summary}).")
