"""The lock-free POST latency histogram exposes what prometheus-client's would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from ocsd.delivery.latency import LatencyHistogram
from ocsd.service.metrics import LATENCY_BUCKETS


def _without_created(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "_created" not in line)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["state", "periodic"]),
            st.one_of(
                st.sampled_from(LATENCY_BUCKETS),  # exactly on a bound: counted in it (le)
                st.floats(min_value=0.0, max_value=100.0, allow_nan=False),
            ),
        ),
        max_size=60,
    )
)
def test_the_scrape_is_the_same_as_prometheus_clients_histogram(
    observations: list[tuple[str, float]],
) -> None:
    theirs_registry, ours_registry = CollectorRegistry(), CollectorRegistry()
    theirs = Histogram(
        "l_seconds", "doc", ["kind"], buckets=LATENCY_BUCKETS, registry=theirs_registry
    )
    ours = LatencyHistogram("l_seconds", "doc", ["kind"], LATENCY_BUCKETS, ours_registry)
    for kind, seconds in observations:
        theirs.labels(kind).observe(seconds)
        ours.labels(kind).observe(seconds)
    expected = _without_created(generate_latest(theirs_registry).decode())
    assert _without_created(generate_latest(ours_registry).decode()) == expected
    created = [
        line
        for line in generate_latest(ours_registry).decode().splitlines()
        if line.startswith("l_seconds_created{")
    ]
    assert len(created) == len({kind for kind, _ in observations})
