"""The end-to-end demo: a believable company run through both simulators (``manage.py
demo_run``). Nothing here is used by the product itself."""
