"""Deliver queued notifications (emails, webhooks) until stopped: the outbox relay as its own process.

Runs beside the beat task and other relays safely (rows are claimed with SKIP LOCKED). SIGTERM or
Ctrl-C finish the send in progress and stop; a SIGKILL loses nothing (the row's lease lapses and
another pass sends it again, with the same webhook-id / Message-ID).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from monitor.notify import relay


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls when idle")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set():
            report = relay.run_once(stop=stop)
            if report.processed:
                self.stdout.write(
                    f"delivered {report.delivered}, retrying {report.retrying}, dead {report.dead}"
                    f", lost claims {report.lost_claims}"
                )
            if options["once"]:
                return
            stop.wait(options["interval"])
