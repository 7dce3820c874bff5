"""The events of one group's simulation: their kinds, their layout and their queue.

An event is a plain tuple, ``(time, seq, kind, a, b, x)``, on one heap per group (no
object per call: a running group keeps a few dozen events, and tuples are the cheapest
thing ``heapq`` orders). ``seq`` numbers the pushes, so no two events compare equal,
the heap never looks past ``seq``, and equal times pop in the order they were pushed.
What ``a``, ``b`` and ``x`` hold depends on the kind:

==================  ===============================  ===================================
kind                what happens                     a, b, x
==================  ===============================  ===================================
``LIVE``            a dialed call is answered live   list, attempt, dial time
``RESULT``          a dial attempt ends otherwise    list, attempt, dial time
``LIVE_ENGAGED``    ``LIVE`` of a call an agent      list, attempt, dial time
                    dialed himself (preview modes)
``RESULT_ENGAGED``  ``RESULT`` of such a call        list, attempt, dial time
``ABANDON``         a live answer's wait for a       list, attempt, answer time;
                    server runs out                  ``seq`` is the waiting call's id
``WRAP_END``        an agent's call ends (talk,      0, 0, end of the talk
                    then wrap-up: one event)
``TALK_END``        an IVR port's call ends          0, 0, connect time
``PREVIEW_DIAL``    an agent has read his record     list, attempt, 0
``WAKE``            a redial falls due while the     0, 0, 0
                    lists had no record ready
==================  ===============================  ===================================
"""

from __future__ import annotations

from heapq import heappush
from typing import Final

LIVE: Final = 0
RESULT: Final = 1
WRAP_END: Final = 2
TALK_END: Final = 3
ABANDON: Final = 4
WAKE: Final = 5
LIVE_ENGAGED: Final = 6
RESULT_ENGAGED: Final = 7
PREVIEW_DIAL: Final = 8

#: The attempts still dialing or ringing: dropping the calls cancels exactly these.
DIALING_KINDS: Final = frozenset((LIVE, RESULT, LIVE_ENGAGED, RESULT_ENGAGED))

Event = tuple[float, int, int, int, int, float]


class EventQueue:
    """The heap of a group's events and the counter that numbers them.

    The hot paths (``GroupSimulation.advance``, ``Dialer.dial``) push onto ``heap``
    themselves with ``seq`` in a local; everything else calls :meth:`push`.
    """

    __slots__ = ("heap", "seq")

    def __init__(self) -> None:
        self.heap: list[Event] = []
        self.seq = 0  # the last number given

    def push(self, time: float, kind: int, a: int, b: int, x: float) -> int:
        """Schedule an event; its number (the id of a waiting call's ``ABANDON``)."""
        self.seq += 1
        heappush(self.heap, (time, self.seq, kind, a, b, x))
        return self.seq
