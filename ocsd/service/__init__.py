"""The imperative shell: the daemon's life cycle, the tasks it supervises (ticker,
stepper, scheduler, file watcher, senders), reload, the control API and metrics."""

#: Every answer of the control API carries ``X-Ocsd-Api: control``: ``ocsd ctl`` tells by
#: it that it reached the daemon and not a sink (``X-Ocsd-Api: sink``) or another server.
API_HEADER = "X-Ocsd-Api"
CONTROL_API = "control"
