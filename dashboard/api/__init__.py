"""The REST/JSON API under /api/v1/: the same data and the same site roles as the pages.

Views stay thin: they scope querysets to the user's sites (scoping.py), validate through the
models' own clean() (serializers.py) and change incidents only through monitor/services.py verbs.
"""
