"""Standard Webhooks signatures (https://www.standardwebhooks.com/), stdlib only.

Three headers are added to a POST; the body is never changed:

- ``webhook-id``: the message id, the same on every attempt of one message;
- ``webhook-timestamp``: the attempt's time, integer seconds since the epoch;
- ``webhook-signature``: ``v1,`` + base64 of HMAC-SHA256 over ``id.timestamp.body``
  keyed with the secret, which is configured as ``whsec_`` + base64 of its bytes.

Any Standard Webhooks library verifies them (the tests use the ``standardwebhooks``
package). The secret never leaves this module: it is not logged, not printed and not
part of any error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time

SECRET_PREFIX = "whsec_"
#: The Standard Webhooks recommendation for the secret's size, in bytes.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class SecretError(ValueError):
    """The configured secret cannot be used; the message never contains the secret."""


def decode_secret(secret: str) -> bytes:
    """The key bytes of ``whsec_<base64>``; raises SecretError (without the value) if bad."""
    if not secret.startswith(SECRET_PREFIX):
        raise SecretError(f"must start with {SECRET_PREFIX!r} followed by base64")
    encoded = secret[len(SECRET_PREFIX) :].strip()
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"the part after {SECRET_PREFIX!r} is not valid base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise SecretError(
            f"must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes after base64 decoding, "
            f"holds {len(key)}"
        )
    return key


def new_secret() -> str:
    """A fresh secret in the configured form (for documentation and tests)."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def new_message_id() -> str:
    """A unique ``webhook-id``: ``msg_`` + 32 hex digits of randomness."""
    return "msg_" + os.urandom(16).hex()


class Signer:
    """Signs bodies with one secret."""

    __slots__ = ("_key",)

    def __init__(self, secret: str) -> None:
        self._key = decode_secret(secret)

    def __repr__(self) -> str:
        return "Signer(<secret redacted>)"

    def signature(self, message_id: str, timestamp: int, body: bytes) -> str:
        signed = b"%s.%d.%s" % (message_id.encode("ascii"), timestamp, body)
        digest = hmac.new(self._key, signed, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode("ascii")

    def headers(self, message_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
        """The three headers of one attempt, timestamped now."""
        timestamp = int(time.time() if now is None else now)
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.signature(message_id, timestamp, body),
        }
