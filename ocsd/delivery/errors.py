"""Why delivery cannot be set up: one line that names the file or option at fault."""


class DeliveryError(Exception):
    """Delivery cannot start as configured (a CA file, an outbox, a dead-letter file)."""


class OutboxError(DeliveryError):
    """The outbox or the dead-letter file cannot be used (one line, names the path)."""
