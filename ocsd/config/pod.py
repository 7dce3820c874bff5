"""``[ocsd] shard = auto``: this instance's shard from its pod's ordinal.

A Kubernetes StatefulSet of N pods gives each pod an ordinal 0..N-1: in the pod's
``apps.kubernetes.io/pod-index`` label (Kubernetes 1.28 and later), which the manifest
hands to the container as :data:`POD_INDEX_VARIABLE` through the downward API, and at the
end of its host name (``ocsd-2``). Pod ``i`` runs shard ``i + 1`` of ``shard-count``.

:func:`pod_shard` is pure (the environment and the host name are its arguments), so
every answer, and every refusal, is unit-tested; :func:`ocsd.config.settings.load_settings`
calls it with the real ones. A refusal is one line naming what was read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from ocsd.config.model import Shard

#: The value of ``shard`` that asks for this resolution (any case).
AUTO = "auto"
#: The pod's ordinal, set by the manifest from the label ``apps.kubernetes.io/pod-index``.
POD_INDEX_VARIABLE = "OCSD_POD_INDEX"
#: The host name a container is given (Kubernetes: the pod's name, ``<statefulset>-<i>``).
HOSTNAME_VARIABLE = "HOSTNAME"
#: An ordinal: up to 9 digits, so int() never meets a huge number.
_ORDINAL = re.compile(r"[0-9]{1,9}")
_HOST_ORDINAL = re.compile(r".*-([0-9]{1,9})")
#: How much of a value read is quoted in a message.
_QUOTED = 80


class PodShard(NamedTuple):
    """The shard of this pod and where its ordinal was read."""

    shard: Shard
    origin: str  # e.g. "pod index 1 in OCSD_POD_INDEX"


def is_auto(value: object) -> bool:
    """Whether ``shard`` is set to ``auto`` (any case, spaces around)."""
    return isinstance(value, str) and value.strip().lower() == AUTO


def pod_shard(count: int, environ: Mapping[str, str], hostname: str) -> PodShard:
    """Shard ``ordinal + 1`` of ``count``: the ordinal from :data:`POD_INDEX_VARIABLE`
    when it is set and not empty, else from a host name ending in ``-<ordinal>``
    (``HOSTNAME``, else ``hostname``, the system's). ValueError naming what was read
    when there is no ordinal, it is not a number, or it is not below ``count``."""
    ordinal, origin = _ordinal(environ, hostname)
    if ordinal >= count:
        raise ValueError(
            f"auto: {origin} is out of range for shard-count = {count} (allowed: 0 to "
            f"{count - 1}); raise shard-count to the StatefulSet's replicas"
        )
    return PodShard(Shard(ordinal + 1, count), origin)


def _ordinal(environ: Mapping[str, str], hostname: str) -> tuple[int, str]:
    index = environ.get(POD_INDEX_VARIABLE, "").strip()
    if index:
        if not _ORDINAL.fullmatch(index):
            raise ValueError(
                f"auto: {POD_INDEX_VARIABLE} = {index[:_QUOTED]!r} is not a pod ordinal "
                "(a whole number from 0)"
            )
        return int(index), f"pod index {int(index)} in {POD_INDEX_VARIABLE}"
    host_variable = environ.get(HOSTNAME_VARIABLE, "").strip()
    host, where = (host_variable, HOSTNAME_VARIABLE) if host_variable else (hostname, "host name")
    match = _HOST_ORDINAL.fullmatch(host)
    if match is None:
        unset = "is empty" if POD_INDEX_VARIABLE in environ else "is not set"
        raise ValueError(
            f"auto: no pod ordinal: {POD_INDEX_VARIABLE} {unset} and the {where} "
            f"{host[:_QUOTED]!r} does not end in -<ordinal>; set {POD_INDEX_VARIABLE} "
            "(deploy/kubernetes sets it from the pod-index label) or give shard = K/N"
        )
    return int(match[1]), f"ordinal {int(match[1])} of the {where} {host[:_QUOTED]!r}"
