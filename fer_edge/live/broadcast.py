"""Fan-out from the live loop to the web clients, never blocking the loop.

Every client gets its own bounded queue: ``publish`` appends to each queue and returns at once; a
queue that is full drops its oldest item (counted) so a slow or vanished client only loses frames
itself. Each client's own server thread drains its queue onto its socket.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

CLOSED = object()  # what ``ClientQueue.get`` returns once the queue is closed and drained


class TooManyClients(Exception):
    pass


class ClientQueue:
    def __init__(self, channel: str, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be >= 1")
        self.channel = channel
        self._items: deque = deque(maxlen=maxlen)
        self._cond = threading.Condition()
        self._closed = False
        self.delivered = 0
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._closed:
                return
            if len(self._items) == self._items.maxlen:
                self.dropped += 1  # deque(maxlen) pushes the oldest out
            self._items.append(item)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Any:
        """The oldest queued item; None when nothing came within ``timeout``; CLOSED when closed and empty."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                self.delivered += 1
                return self._items.popleft()
            return CLOSED if self._closed else None

    def close(self, final: Any = None) -> None:
        """No more items after ``final`` (if given): the client drains what is queued, then ends."""
        with self._cond:
            if self._closed:
                return
            if final is not None:
                if len(self._items) == self._items.maxlen:
                    self.dropped += 1
                self._items.append(final)
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class Hub:
    """The set of client queues per channel ("video", "events"), capped at ``max_clients`` in all."""

    def __init__(self, max_clients: int) -> None:
        self.max_clients = int(max_clients)
        self._queues: set[ClientQueue] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.served = 0  # clients ever subscribed
        self.dropped_by_gone = 0  # drops counted by clients that have left

    def subscribe(self, channel: str, maxlen: int) -> ClientQueue:
        q = ClientQueue(channel, maxlen)
        with self._lock:
            if self._closed:
                q.close()
            elif len(self._queues) >= self.max_clients:
                raise TooManyClients(f"{len(self._queues)} clients already connected (limit {self.max_clients})")
            else:
                self._queues.add(q)
                self.served += 1
        return q

    def unsubscribe(self, q: ClientQueue) -> None:
        with self._lock:
            if q in self._queues:
                self._queues.remove(q)
                self.dropped_by_gone += q.dropped

    def count(self, channel: str | None = None) -> int:
        with self._lock:
            return sum(1 for q in self._queues if channel is None or q.channel == channel)

    def publish(self, channel: str, item: Any) -> int:
        """Queue ``item`` for every client of ``channel``; returns how many got it. Never blocks on a client."""
        with self._lock:
            targets = [q for q in self._queues if q.channel == channel]
        for q in targets:
            q.put(item)
        return len(targets)

    def dropped(self) -> int:
        with self._lock:
            return self.dropped_by_gone + sum(q.dropped for q in self._queues)

    def close(self, finals: dict[str, Any] | None = None) -> None:
        """Close every queue (after a last item per channel); later subscribers get a closed queue."""
        finals = finals or {}
        with self._lock:
            self._closed = True
            queues = list(self._queues)
        for q in queues:
            q.close(finals.get(q.channel))
