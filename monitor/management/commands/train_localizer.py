"""`python manage.py train_localizer`: the same as `python -m detection.train` (see its --help)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Train the action localizer on ../shared/data (and --ava clips); write a checkpoint."

    def run_from_argv(self, argv: list[str]) -> None:
        # The trainer owns its options; Django's parser would reject them.
        from detection.train import main

        main(argv[2:])

    def handle(self, *args: Any, **options: Any) -> None:
        from detection.train import main

        main(list(args) or sys.argv[2:])
