"""Localize actors and their actions in a video file: one JSON line per analysed frame.

The work is done by detection.localize (Django-free; also `python -m detection.localize`), whose
docstring describes the format.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection.localize import LocalizeError, add_arguments, localize, options_from, summary_line


class Command(BaseCommand):
    help = "Localize actors and their actions in a video file: one JSON line per analysed frame."

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = localize(options["video"], options["out"], options_from(options), stderr=sys.stderr)
        except LocalizeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(summary_line(summary, options["out"]))
