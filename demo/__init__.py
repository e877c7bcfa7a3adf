"""The end-to-end demo: a believable company run through both simulators (``manage.py
demo_run``). It resets tenants' data, so it lives outside the product packages and is an
installed app only where the settings enable it (DEBUG or DEMO_ENABLED; see config/settings.py);
no product code imports it."""
