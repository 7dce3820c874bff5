"""The waiting room of one reliable worker: per-group state queues, retry timers and
periodic slots, so a group's notifications leave in order and a retry holds up only
its own group."""

from __future__ import annotations

import heapq
import itertools
from collections import deque

from ocsd.delivery.notifier import Notification


class Lane:
    """The work of one reliable worker: per-group state queues, retry timers, periodic slots.

    A group with state notifications waiting is in exactly one place: ``ready`` (its
    head may be sent now), in flight (taken by the worker), or ``waiting`` (its head
    failed and is due again at a time on the ``timers`` heap). Its later notifications
    stay behind the head, so they leave in order; other groups are not held up.

    A group's periodic notification (the newest only) may go when the group has no
    state notification waiting (it is newer than them) and is not held back by a
    retry of an earlier periodic one.
    """

    __slots__ = (
        "groups",
        "periodic",
        "periodic_hold",
        "periodic_ready",
        "periodic_streak",
        "ready",
        "tie",
        "timers",
        "waiting",
    )

    def __init__(self) -> None:
        self.groups: dict[int, deque[Notification]] = {}
        self.ready: deque[int] = deque()
        self.waiting: dict[int, float] = {}
        self.timers: list[tuple[float, int, int, bool]] = []  # (due, tie, dbid, is_state)
        self.tie = itertools.count()
        self.periodic: dict[int, Notification] = {}
        self.periodic_ready: dict[int, None] = {}
        self.periodic_hold: dict[int, float] = {}
        self.periodic_streak: dict[int, int] = {}

    def add_state(self, notification: Notification) -> Notification | None:
        """Queue a state notification; returns the periodic one it supersedes, if any."""
        dbid = notification.group_dbid
        queue = self.groups.get(dbid)
        if queue is None:
            self.groups[dbid] = deque((notification,))
            self.ready.append(dbid)
        else:
            queue.append(notification)
        self.periodic_ready.pop(dbid, None)
        return self.periodic.pop(dbid, None)

    def add_periodic(self, notification: Notification) -> Notification | None:
        """Keep the newest periodic notification of a group, in the place of the one it
        replaces (so every group is served in turn); returns the replaced one."""
        dbid = notification.group_dbid
        stale = self.periodic.get(dbid)
        self.periodic[dbid] = notification
        if dbid not in self.groups and dbid not in self.periodic_hold:
            self.periodic_ready[dbid] = None
        return stale

    def take(self, now: float, periodic_allowed: bool) -> Notification | None:
        self._expire(now)
        if self.ready:
            return self.groups[self.ready.popleft()][0]
        if periodic_allowed and self.periodic_ready:
            dbid = next(iter(self.periodic_ready))
            del self.periodic_ready[dbid]
            return self.periodic.pop(dbid)
        return None

    def _expire(self, now: float) -> None:
        while self.timers and self.timers[0][0] <= now:
            due, _tie, dbid, is_state = heapq.heappop(self.timers)
            if is_state:
                if self.waiting.get(dbid) == due:
                    del self.waiting[dbid]
                    self.ready.append(dbid)
            elif self.periodic_hold.get(dbid) == due:
                del self.periodic_hold[dbid]
                if dbid in self.periodic and dbid not in self.groups:
                    self.periodic_ready[dbid] = None

    def next_due(self) -> float | None:
        return self.timers[0][0] if self.timers else None

    def state_done(self, dbid: int) -> None:
        """The head of the group left (delivered or dead-lettered): the next one may go."""
        queue = self.groups[dbid]
        queue.popleft()
        if queue:
            self.ready.append(dbid)
            return
        del self.groups[dbid]
        if dbid in self.periodic and dbid not in self.periodic_hold:
            self.periodic_ready[dbid] = None

    def state_retry(self, dbid: int, due: float) -> None:
        self.waiting[dbid] = due
        heapq.heappush(self.timers, (due, next(self.tie), dbid, True))

    def periodic_failed(self, notification: Notification, due: float) -> None:
        """Hold the group's periodic notifications until ``due``; retry this one unless a
        newer one came meanwhile (or a state notification superseded it)."""
        dbid = notification.group_dbid
        self.periodic_hold[dbid] = due
        heapq.heappush(self.timers, (due, next(self.tie), dbid, False))
        self.periodic_ready.pop(dbid, None)
        if dbid not in self.periodic and dbid not in self.groups:
            self.periodic[dbid] = notification

    def clear_periodic(self) -> list[Notification]:
        dropped = list(self.periodic.values())
        self.periodic.clear()
        self.periodic_ready.clear()
        return dropped

    def expedite(self, now: float) -> int:
        """The receiver answers again: what waits only because it was unreachable is due
        now, its backoff started afresh; periodic holds end. How many state heads moved."""
        expedited = 0
        for dbid, due in list(self.waiting.items()):
            head = self.groups[dbid][0]
            if head.unreachable and due > now:
                head.streak = 0
                head.unreachable = False
                self.state_retry(dbid, now)
                expedited += 1
        for dbid, due in list(self.periodic_hold.items()):
            if due > now:
                self.periodic_hold[dbid] = now
                heapq.heappush(self.timers, (now, next(self.tie), dbid, False))
        self.periodic_streak.clear()
        return expedited
