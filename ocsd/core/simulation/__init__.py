"""Seeded discrete-event simulation of outbound dialing for one Campaign Group.

Pure: the caller passes simulated time (``advance(now)``) and the random generator;
nothing here reads a clock, logs or does I/O. Events are plain tuples on one heap,
agents and records are counts (no object per agent, record or call), and the windowed
statistics of docs/contract.md#statistics are differences of cumulative counters recorded at the
boundaries of the window's buckets (``ocsd.core.statistics.SnapshotRing``), so ``statistics(now)``
costs O(calling lists), whatever the traffic.

The parts, each in its module (``GroupSimulation`` owns one of each and dispatches the
events to them):

* ``model``: what is simulated (``GroupModel``, ``ListModel``), ``Totals``, and the
  model's constants; ``modes``: what each dial mode means here.
* ``events``: the event kinds, the layout of an event tuple and the ``EventQueue``.
* ``records``: per calling list, the fresh records, the redial queues and the
  finished records (``Records``).
* ``servers``: the agents and the IVR ports (``ServerPool``).
* ``counters``: the cumulative counts the statistics and the pacing are measured from.
* ``pacing``: the young calls (``YoungCalls``) and what predictive pacing learns and
  steers (``Pacing``), with the pacing constants.
* ``dialer``: how many calls the dial mode wants, and placing them (``Dialer``).
* ``window``: the statistics window (``StatisticsWindow``).
* ``group``: ``GroupSimulation``, the public face, and the handling of each event.

[ocsd decisions], each with its constant (in ``model`` or ``pacing``) so it can be changed in
one place:

* Outcome of a dial attempt, drawn when it is dialed from its calling list's mix:
  live answer, answering machine, busy, or no answer (the rest). A live or machine
  answer comes after ring-time x uniform(0.5, 1.5) seconds (at most no-answer-timeout);
  busy ends after BUSY_SIGNAL_TIME; no answer after no-answer-timeout.
* A live answer reaches the agents' queue TRANSFER_DELAY seconds after the answer
  (call-progress detection and transfer). The "with seizing" variants and the GVP
  modes connect at once (the agent, or the IVR port, is already on the line): that is
  the only difference between a mode and its seizing variant.
* A live answer that finds no ready agent waits ABANDON_GRACE seconds; if no agent
  frees up by then it is abandoned: an overdial. With optimize-by
  average-distribution-time calls may wait ADT_QUEUE_FACTOR x goal (at least the grace).
* Records: a live answer connected to an agent finishes its record. Answering
  machine, busy, no answer and abandoned calls are redialed after the list's
  redial-delay, up to max-attempts dial attempts in all; the last failed attempt
  finishes the record. Due redials go before fresh records; lists take turns (round
  robin over the lists with a record ready). A list drains when every record is
  finished; ``exhausted`` is every list drained and no call in progress.
* Agents: talk time is exponential with mean talk-time, wrap-up uniform on
  [0.5, 1.5] x wrap-up-time; the busy factor counts talk + wrap-up; agents are logged
  in from the group's first start (stopping does not log them out, so the busy factor
  falls while a group is stopped). GVP modes have no agents: live answers go to
  ``ports`` IVR ports (exponential talk-time, no wrap-up); the busy factor is null.
* Stop (``set_dialing(None)``): no new dial; calls in progress (and a record an agent
  is previewing, which goes back undialed) finish normally. ``drop_calls`` (force
  unload) also stops dialing, cancels the calls dialing (their records go back, the
  attempt does not count), counts the live answers waiting for an agent as dropped
  (overdial rate) and ends the connected calls at once (their agents go to wrap-up).
* Progressive: one call in progress per ready agent (ready agents - queued calls -
  calls dialing). Power: lines-per-agent calls per ready agent. Preview / push
  preview: a ready agent takes a record, reads it for PREVIEW_TIME /
  PUSH_PREVIEW_TIME seconds and dials it himself, so no call can be overdialed (a
  non-live outcome frees the agent at once).
* Predictive pacing keeps n = g x A / p "young" calls dialing: calls dialed less than
  the longest dial-to-answer time seen ago (older ones can no longer be live, so they
  do not count). p is the learned hit ratio (from attempts whose outcome is known for
  sure, so quick busy tones do not bias it), A = ready agents - queued calls + busy
  agents x T / H the agents expected to be free when a call dialed now is answered
  (T the learned dial-to-answer time, H the learned handle time), and g a gain learned
  by integral control towards the goal: busy factor (agent busy time against goal x
  agent time), overdial rate (goal x live answers against abandoned calls: an abandon
  budget, so the long-run rate converges to the goal), average waiting time (the
  agents' wait for a call: idle agent time against goal x connected calls) or average
  distribution time (the customers' wait for an agent: goal x answered calls against
  the time they waited, an abandoned call counting its whole wait). Estimates decay
  with LEARN_TIME, g is updated every CONTROL_STEP and bounded to [G_MIN, G_MAX], and
  it does not wind up while the lists cannot supply records. Until HISTORY_LENGTH
  attempts are known a predictive group dials progressively (like the product's
  history_length). With the overdial-rate and distribution-time methods it never
  dials fewer calls than progressive would (progressive cannot overdial), so it never
  idles agents to pay back an abandon. A dial-mode change keeps counts, lists and
  everything learned (g included).
* Small groups (at most SMALL_GROUP_SIZE agents or ports): one abandoned call moves a
  windowed overdial rate by several points, so no pacing decision ever looks at a
  windowed rate (g integrates counts, and one abandon moves log g by at most
  K_ABANDON / MIN_STEP_AGENTS); and the young calls are not counted as p each but by
  the learned chance that a call still dialing at its age ends live (a small group
  has a handful of calls dialing, whose ages matter: three fresh calls are about one
  live answer, three calls ringing for 15 s almost none).
"""

from ocsd.core.simulation.group import GroupSimulation
from ocsd.core.simulation.model import DEFAULT_DIALING, GroupModel, ListModel, Totals

__all__ = ["DEFAULT_DIALING", "GroupModel", "GroupSimulation", "ListModel", "Totals"]
