"""The notifier of a configuration: its transport and the policy of its delivery mode.

The service builds one at start-up and a new one when a reload changes a delivery
option; :class:`Delivery` keeps, beside the notifier, the reliable policy when there is
one (its outbox and dead letters), so nothing asks the notifier what it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocsd.config.settings import Settings
from ocsd.delivery.errors import DeliveryError
from ocsd.delivery.latency import LatencyHistogram
from ocsd.delivery.notifier import BodySource, DeliveryCounters, DeliveryPolicy, Notifier, Spawn
from ocsd.delivery.ocs import OcsPolicy
from ocsd.delivery.reliable import ReliablePolicy
from ocsd.delivery.signing import Signer
from ocsd.delivery.transport import Transport
from ocsd.logs.redact import redact_uri

#: Options of delivery: a change makes a new notifier (a new pool, a new delivery mode).
DELIVERY_OPTIONS = (
    *(name for name in Settings.model_fields if name.startswith("fault_")),
    "send_campaigngroup_states",
    "campaigngroup_states_uri",
    "http_response_timeout",
    "http_connection_pool_size",
    "delivery_mode",
    "retry_schedule",
    "max_attempts",
    "webhook_secret",
    "outbox_path",
    "dead_letter_path",
    "ca_file",
)


@dataclass(frozen=True)
class Delivery:
    """A notifier, and its reliable policy when the delivery mode is ``reliable``."""

    notifier: Notifier
    reliable: ReliablePolicy | None = None


def build_delivery(
    settings: Settings,
    *,
    source: BodySource,
    spawn: Spawn | None = None,
    latency: LatencyHistogram | None = None,
    counters: DeliveryCounters | None = None,
) -> Delivery | None:
    """The delivery of ``settings``, not started; None when sending is off.

    Raises DeliveryError, with one line saying why, for whatever the settings name that
    cannot be used: a CA file, a URI the HTTP client refuses (a port out of range), an
    outbox or dead-letter file that cannot be created or opened.
    """
    if not settings.delivers:
        return None
    uri = settings.campaigngroup_states_uri
    assert uri is not None
    secret = settings.webhook_secret
    try:
        transport = Transport(
            uri,
            settings.http_response_timeout,
            settings.http_connection_pool_size,
            signer=Signer(secret.get_secret_value()) if secret is not None else None,
            ca_file=settings.ca_file,
            latency=latency,
        )
    except ValueError as exc:  # e.g. a port out of range, refused by yarl
        raise DeliveryError(
            f"[OCServer] campaigngroup-states-uri {redact_uri(uri)!r}: cannot be used: {exc}"
        ) from None
    reliable = None
    policy: DeliveryPolicy
    if settings.delivery_mode == "reliable":
        try:
            policy = reliable = ReliablePolicy(
                retry_schedule=settings.retry_schedule,
                max_attempts=settings.attempts_allowed,
                outbox_path=settings.outbox_path,
                dead_letter_path=settings.dead_letter_path,
            )
        except OSError as exc:  # e.g. a read-only directory: the outbox cannot be created
            raise DeliveryError(
                f"[ocsd] outbox-path {settings.outbox_path!r}: cannot be created or opened: "
                f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}"
            ) from None
    else:
        policy = OcsPolicy()
    notifier = Notifier(
        transport,
        policy,
        source=source,
        spawn=spawn,
        counters=counters,
        faults=settings.fault_rates(),
    )
    return Delivery(notifier, reliable)


def delivery_changes(old: Settings, new: Settings) -> list[str]:
    """The delivery options that differ, as INI option names."""
    return [f.replace("_", "-") for f in DELIVERY_OPTIONS if getattr(old, f) != getattr(new, f)]
