"""The imperative shell: the daemon's life cycle, the tasks it supervises (ticker,
stepper, scheduler, file watcher, senders), reload, the control API and metrics."""
