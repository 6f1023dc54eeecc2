"""Call records: kept in a bounded in-memory buffer and written in batches by one background thread."""
from __future__ import annotations

import atexit
import itertools
import logging
import re
import sys
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

# Argument names that are secrets whatever the server says; configured names are added per server.
SECRET_NAME = re.compile(r"pass(word|wd)?|secret|token|api[-_]?key|authori[sz]ation|credential|private[-_]?key|cookie",
                         re.IGNORECASE)
REDACTED = "[redacted]"
_MAX_ARGUMENT_DEPTH = 8
_MAX_ARGUMENT_TEXT = 2000  # characters kept of one string argument


def redact(value: Any, fields: frozenset[str], depth: int = 0) -> Any:
    """The arguments as a record keeps them: secret and configured fields replaced, long text cut, depth bounded."""
    if depth >= _MAX_ARGUMENT_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {str(key): (REDACTED if (key in fields or SECRET_NAME.search(str(key))) else
                           redact(item, fields, depth + 1)) for key, item in list(value.items())[:200]}
    if isinstance(value, list):
        return [redact(item, fields, depth + 1) for item in value[:200]]
    if isinstance(value, str) and len(value) > _MAX_ARGUMENT_TEXT:
        return value[:_MAX_ARGUMENT_TEXT] + "…"
    return value


class RecordBuffer:
    """Records waiting to be written. Bounded: past `limit` a record is dropped and counted, never queued
    without end while the database is away."""

    def __init__(self) -> None:
        self._items: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.dropped = 0
        self.written = 0
        # While writes fail: since when, and the dropped count at the last good write (one log line when it starts,
        # one when it ends).
        self._failing_since: float | None = None
        self._dropped_before = 0

    def add(self, record: dict[str, Any]) -> None:
        # deque.append is atomic; the length check may let a few past the limit under contention, which is fine.
        if len(self._items) >= settings.GATEWAY_CALL_RECORD_BUFFER:
            self.dropped += 1
            from . import metrics

            metrics.records_dropped()
            return
        self._items.append(record)
        if self._thread is None or not self._thread.is_alive():
            self._start()
        elif len(self._items) >= settings.GATEWAY_CALL_RECORD_BATCH and not self._wake.is_set():
            self._wake.set()  # once: setting an Event takes its lock, which the flusher may hold

    def pending(self) -> int:
        return len(self._items)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="call-record-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        from django.db import connection

        while not self._stopping:
            self._wake.wait(max(0.05, settings.GATEWAY_CALL_RECORD_FLUSH_SECONDS))
            self._wake.clear()
            try:
                self.flush(quiet=self._stopping)
            except Exception:  # the flusher must outlive a bad batch; flush() logged it already
                pass
            purge_if_due(time.monotonic())
            # Between flushes the thread holds no connection: PostgreSQL's slots (and a test database being
            # dropped) need it back, and one connection a second is cheap next to what a batch saves.
            try:
                connection.close()
            except Exception:  # a connection the database dropped meanwhile: nothing left to close
                pass

    def flush(self, *, quiet: bool = False) -> int:
        """Write every buffered record now; returns how many were written. Records stay buffered on failure."""
        self.failure: Exception | None = None
        written = 0
        with self._lock:  # one writer at a time: the thread, a shutdown, a test
            while self._items:
                # Read, write, then remove: a batch stays counted against the bound while its write may fail.
                batch = list(itertools.islice(self._items, settings.GATEWAY_CALL_RECORD_BATCH))
                try:
                    written += _write(batch)
                except Exception as exc:
                    self.failure = exc
                    if self._failing_since is None:
                        self._failing_since = time.monotonic()
                        if not quiet:
                            log.warning("Could not write call records (%s); keeping up to %d in memory until the "
                                        "database returns, then counting the rest as dropped",
                                        " ".join(str(exc).split()) or type(exc).__name__, settings.GATEWAY_CALL_RECORD_BUFFER)
                    break
                for _ in batch:  # only add() appends meanwhile, at the other end
                    self._items.popleft()
            else:
                if self._failing_since is not None:
                    log.warning("Call records written again after %.1f s: %d kept meanwhile, %d dropped",
                                time.monotonic() - self._failing_since, written, self.dropped - self._dropped_before)
                    self._failing_since = None
                self._dropped_before = self.dropped  # drops since the last write that worked
        self.written += written
        return written

    def stop(self) -> None:
        """Clean shutdown: write what is buffered, then let the thread end."""
        self._stopping = True
        self._wake.set()
        self.flush(quiet=True)
        if self._items:
            # Logging may be torn down this late; the process's own stderr is still there.
            print(f"{len(self._items)} call record(s) could not be written at shutdown: {self.failure}",
                  file=sys.__stderr__)


def _without_nul(value: Any) -> Any:
    # PostgreSQL text and jsonb cannot hold NUL; a client's odd bytes must never make a whole batch unwritable.
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _storable(record: dict[str, Any]) -> dict[str, Any]:
    return {key: _without_nul(value) for key, value in record.items()}


def _write(batch: list[dict[str, Any]]) -> int:
    from django.db import transaction

    from console.models import Consumer, McpServer

    batch = [_storable(record) for record in batch]
    # A server deleted since the call takes its records with it; a deleted consumer's become anonymous (its name
    # stays). Two small queries a batch, instead of a foreign key that would fail the deletion itself.
    servers = set(McpServer.objects.filter(pk__in={r["mcp_server_id"] for r in batch}).values_list("pk", flat=True))
    wanted = {r["consumer_id"] for r in batch if r.get("consumer_id") is not None}
    consumers = set(Consumer.objects.filter(pk__in=wanted).values_list("pk", flat=True)) if wanted else set()
    kept = []
    for record in batch:
        if record["mcp_server_id"] not in servers:
            continue
        if record.get("consumer_id") is not None and record["consumer_id"] not in consumers:
            record = {**record, "consumer_id": None}
        kept.append(record)
    with transaction.atomic():
        _insert(kept)
    return len(kept)


_statement: tuple[str, list[tuple[str, Any]]] | None = None


def _statement_for(connection) -> tuple[str, list[tuple[str, Any]]]:
    """The batch statement for this database (COPY on PostgreSQL, a multi-row INSERT otherwise) and its columns
    with their defaults, worked out once."""
    global _statement
    if _statement is None:
        from console.models import CallRecord

        fields = [f for f in CallRecord._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        into = f"{quote(CallRecord._meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
        if connection.vendor == "postgresql":
            sql = f"COPY {into} FROM STDIN"
        else:
            sql = f"INSERT INTO {into} VALUES ({', '.join(['%s'] * len(fields))})"
        _statement = (sql, [(f.attname, f.get_default()) for f in fields])
    return _statement


def _insert(batch: list[dict[str, Any]]) -> None:
    """One statement for the batch through the cursor: the ORM's bulk_create builds a model instance and compiles
    every value per row, about five times the cost of the write itself at the rates the gateway serves."""
    from django.db import connection

    from console.models import CallRecord

    if not batch:
        return
    sql, columns = _statement_for(connection)
    adapt_time = connection.ops.adapt_datetimefield_value
    arguments_field = CallRecord._meta.get_field("arguments")
    rows = []
    for record in batch:
        row = []
        for name, default in columns:
            value = record.get(name, default)
            if name == "at":
                value = adapt_time(value)
            elif name == "arguments" and value is not None:
                value = arguments_field.get_db_prep_save(value, connection)
            row.append(value)
        rows.append(row)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY streams the rows in one statement: about half the CPU of executemany's per-row round of binding.
            with cursor.cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            # SQLite caps the parameters of one statement: executemany sends the rows without that limit.
            cursor.executemany(sql, rows)


buffer = RecordBuffer()
atexit.register(buffer.stop)


def flush_records() -> int:
    return buffer.flush()


def purge_records(*, now: datetime | None = None) -> int:
    """Delete records older than GATEWAY_CALL_RECORD_RETENTION_DAYS; returns how many (0 when kept forever)."""
    from console.models import CallRecord

    days = settings.GATEWAY_CALL_RECORD_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or datetime.now(tz=timezone.utc)) - timedelta(days=days)
    deleted, _ = CallRecord.objects.filter(at__lt=cutoff).delete()
    return deleted


_last_purge = 0.0


def purge_if_due(now_monotonic: float) -> None:
    """The embedded profile has no Celery beat: the flusher thread purges about hourly instead."""
    global _last_purge
    if settings.CELERY_TASK_ALWAYS_EAGER and now_monotonic - _last_purge > 3600:
        _last_purge = now_monotonic
        try:
            purge_records()
        except Exception:
            log.exception("Purging old call records failed")
