"""The receiver toolkit: body validation (JSON Schema and life-cycle rules), the sink
and its dashboard."""
