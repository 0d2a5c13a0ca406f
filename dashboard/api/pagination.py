"""Cursor pagination: no COUNT(*) and no OFFSET, so page 1000 of a large table costs what page 1
does, and rows arriving meanwhile never shift a page. Orderings are on indexed columns."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class NewestFirst(CursorPagination):
    ordering: str | tuple[str, ...] = "-id"  # the primary key: always indexed, always unique
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class IncidentsNewestFirst(NewestFirst):
    # Incident has an index on (site, -started_at); the id breaks ties between equal start times.
    ordering = ("-started_at", "-id")
