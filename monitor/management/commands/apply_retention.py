"""Remove clips, posters and events past their site's retention, and enforce media budgets."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from monitor.retention import MIB, Removal, RetentionReport, apply_retention


def _line(removal: Removal, verb: str) -> str:
    files = ", ".join(removal.files)
    return f"{verb} incident #{removal.incident_id}: {files} ({removal.size / MIB:.1f} MB), {removal.reason}"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list what would be removed; change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        report = apply_retention(dry_run=options["dry_run"])
        self._print(report)

    def _print(self, report: RetentionReport) -> None:
        repair, remove = ("would repair", "would remove") if report.dry_run else ("repaired", "removed")
        for incident_id in report.repaired:
            self.stdout.write(f"{repair} incident #{incident_id}: its row named a file that is gone")
        for removal in report.removed:
            self.stdout.write(_line(removal, remove))
        self.stdout.write(
            f"{'Dry run: would remove' if report.dry_run else 'Removed'} media of {len(report.removed)} incident(s)"
            f" ({report.freed_bytes / MIB:.1f} MB) and {report.events_deleted} event(s);"
            f" {len(report.repaired)} row(s) {'to repair' if report.dry_run else 'repaired'}."
        )
