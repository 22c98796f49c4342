"""Writing a live recording while it records: the frame callback hands each analysed frame
to a ``SessionWriter`` (an append under a lock, nothing else), and the writer's own thread
turns them into rows and writes them in one transaction every ``flush_seconds``. A process
that is killed, or a tab closed without stopping, keeps everything written until then (at
most ``flush_seconds`` is lost); the session then shows as interrupted."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fer_core.records.store import Records

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
MAX_PENDING = 20_000  # frames waiting for the database; beyond it frames are counted, not kept


class SessionWriter:
    """Writes one session's rows in batches on a thread of its own."""

    def __init__(
        self,
        records: Records,
        session_id: int,
        to_rows: Callable[[list], list[dict]] = lambda items: items,
        flush_seconds: float = FLUSH_SECONDS,
        max_pending: int = MAX_PENDING,
        on_flush: Callable[[int], None] | None = None,
        final_name: Callable[[], str] | None = None,
    ):
        self.records, self.session_id = records, int(session_id)
        self._to_rows = to_rows
        self.flush_seconds = float(flush_seconds)
        self.max_pending = int(max_pending)
        self._on_flush = on_flush
        self._final_name = final_name  # the session's name once finished, asked then
        self._pending: list = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing: str | None = None  # the status to finish with, once asked to close
        self.written = 0  # rows in the database
        self.dropped = 0  # frames not kept because the database fell behind
        self.error: str | None = None
        self.finished = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"fer-session-{session_id}", daemon=True
        )
        self._thread.start()

    def put(self, item) -> None:
        """One frame (whatever ``to_rows`` turns into rows): appended, never waits."""
        with self._lock:
            if self._closing is not None:
                return
            if len(self._pending) >= self.max_pending:
                self.dropped += 1
                return
            self._pending.append(item)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self, status: str = "complete", wait: bool = True, timeout: float = 30.0) -> None:
        """Write what is pending, mark the session ``status``. ``wait=False``: ask the
        writer's thread to do it (from a thread that must not wait, the video thread)."""
        with self._lock:
            if self._closing is None:
                self._closing = status
        self._wake.set()
        if wait:
            self._thread.join(timeout)

    def _flush(self) -> None:
        with self._lock:
            items, self._pending = self._pending, []
        if not items:
            return
        rows = self._to_rows(items)
        try:
            self.written += self.records.add_rows(self.session_id, rows)
            self.error = None
        except Exception as exc:  # noqa: BLE001 - kept for the page; the frames are retried
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            logger.warning("Saving live session %s failed: %s", self.session_id, self.error)
            with self._lock:  # keep them for the next try, in order
                self._pending[:0] = items
            return
        if self._on_flush is not None:
            self._on_flush(self.written)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self._flush()
            with self._lock:
                closing = self._closing
            if closing is not None:
                self._flush()
                try:
                    name = self._final_name() if self._final_name is not None else None
                    self.records.finish_session(self.session_id, closing, name=name)
                except Exception as exc:  # noqa: BLE001
                    self.error = f"{type(exc).__name__}: {exc}"
                self.finished.set()
                return


__all__ = ["SessionWriter", "FLUSH_SECONDS"]
