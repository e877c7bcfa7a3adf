"""Prepare the demo: an admin login and a demo tenant (idempotent).

The demo runs on loopback with DEBUG on; the login is printed on purpose.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.audit import Actor
from tenants.models import CollectionMode, Membership, Role, Tenant
from tenants.services import tenant_create

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"


class Command(BaseCommand):
    help = "Create the demo admin login and the demo tenant (safe to run again)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("demo_setup only runs with DEBUG on (it prints a password).")
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_USERNAME,
            defaults={"is_staff": True, "is_superuser": True, "email": "demo@example.com"},
        )
        if created or not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
            user.save()
        tenant = Tenant.objects.filter(slug="demo").first()
        if tenant is None:
            tenant = tenant_create(
                actor=Actor.system("demo_setup"),
                name="Demo Trading BV",
                slug="demo",
                time_zone="Europe/Amsterdam",
                collection_mode=CollectionMode.REVIEW,
                currencies=["EUR", "GBP"],
            )
        Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Role.ADMIN})
        self.stdout.write(f"Demo login: {DEMO_USERNAME} / {DEMO_PASSWORD}")
        self.stdout.write(f"Demo tenant: {tenant.name} ({tenant.slug})")
