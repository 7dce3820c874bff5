"""Delivery of bodies to the receiver: the HTTP transport, the ``ocs`` and ``reliable``
delivery policies, the outbox and Standard Webhooks signing. Knows bytes, not groups."""
