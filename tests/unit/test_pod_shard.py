"""``[ocsd] shard = auto``: the shard from the pod's ordinal (ocsd.config.pod), and how
load_settings resolves it, refuses it in one line naming what was read, and says it."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest

from ocsd.config.model import Shard
from ocsd.config.pod import PodShard, is_auto, pod_shard
from ocsd.config.settings import ConfigError, load_settings, shard_summary


@pytest.mark.parametrize(
    ("environ", "hostname", "expected"),
    [
        ({"OCSD_POD_INDEX": "0"}, "vm", PodShard(Shard(1, 3), "pod index 0 in OCSD_POD_INDEX")),
        ({"OCSD_POD_INDEX": " 2 "}, "vm", PodShard(Shard(3, 3), "pod index 2 in OCSD_POD_INDEX")),
        # the variable beats the host name (a pod's name may end in anything)
        (
            {"OCSD_POD_INDEX": "1", "HOSTNAME": "ocsd-2"},
            "x-0",
            PodShard(Shard(2, 3), "pod index 1 in OCSD_POD_INDEX"),
        ),
        (
            {"HOSTNAME": "ocsd-1"},
            "vm",
            PodShard(Shard(2, 3), "ordinal 1 of the HOSTNAME 'ocsd-1'"),
        ),
        # empty: a downward-API label the cluster does not set (before Kubernetes 1.28)
        (
            {"OCSD_POD_INDEX": "", "HOSTNAME": "my-ocsd-fleet-02"},
            "vm",
            PodShard(Shard(3, 3), "ordinal 2 of the HOSTNAME 'my-ocsd-fleet-02'"),
        ),
        ({}, "ocsd-0", PodShard(Shard(1, 3), "ordinal 0 of the host name 'ocsd-0'")),
    ],
)
def test_the_ordinal_gives_shard_ordinal_plus_one(
    environ: dict[str, str], hostname: str, expected: PodShard
) -> None:
    assert pod_shard(3, environ, hostname) == expected


@pytest.mark.parametrize(
    ("environ", "hostname", "message"),
    [
        (
            {},
            "build-host",
            "auto: no pod ordinal: OCSD_POD_INDEX is not set and the host name "
            "'build-host' does not end in -<ordinal>; set OCSD_POD_INDEX (deploy/kubernetes "
            "sets it from the pod-index label) or give shard = K/N",
        ),
        (
            {"OCSD_POD_INDEX": "", "HOSTNAME": "ocsd"},
            "vm",
            "auto: no pod ordinal: OCSD_POD_INDEX is empty and the HOSTNAME 'ocsd' does not "
            "end in -<ordinal>; set OCSD_POD_INDEX (deploy/kubernetes sets it from the "
            "pod-index label) or give shard = K/N",
        ),
        (
            {"OCSD_POD_INDEX": "one"},
            "ocsd-1",
            "auto: OCSD_POD_INDEX = 'one' is not a pod ordinal (a whole number from 0)",
        ),
        (
            {"OCSD_POD_INDEX": "-1"},
            "ocsd-1",
            "auto: OCSD_POD_INDEX = '-1' is not a pod ordinal (a whole number from 0)",
        ),
        (
            {"OCSD_POD_INDEX": "9" * 400},
            "vm",
            f"auto: OCSD_POD_INDEX = {'9' * 80!r} is not a pod ordinal (a whole number from 0)",
        ),
        (
            {"OCSD_POD_INDEX": "3"},
            "vm",
            "auto: pod index 3 in OCSD_POD_INDEX is out of range for shard-count = 3 "
            "(allowed: 0 to 2); raise shard-count to the StatefulSet's replicas",
        ),
        (
            {"HOSTNAME": "ocsd-7"},
            "vm",
            "auto: ordinal 7 of the HOSTNAME 'ocsd-7' is out of range for shard-count = 3 "
            "(allowed: 0 to 2); raise shard-count to the StatefulSet's replicas",
        ),
    ],
)
def test_a_missing_bad_or_out_of_range_ordinal_is_refused_naming_what_was_read(
    environ: dict[str, str], hostname: str, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        pod_shard(3, environ, hostname)
    assert str(caught.value) == message


@pytest.mark.parametrize(("value", "auto"), [("auto", True), (" AUTO ", True), ("1/3", False)])
def test_auto_is_recognised_in_any_case(value: str, auto: bool) -> None:
    assert is_auto(value) is auto
    assert is_auto(None) is False


def _load(tmp_path: Path, lines: str, **environ: str) -> object:
    path = tmp_path / "ocsd.ini"
    groups = "[calling-list:L]\ndbid = 1\n" + "".join(
        f"[campaign-group:G{dbid}]\ndbid = {dbid}\ncampaign = C\ngroup = T\nqueue = 7001\n"
        "calling-lists = L\n"
        for dbid in range(101, 111)
    )
    path.write_text(f"[ocsd]\n{lines}\n{groups}", encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("OCSD_")}
    clean.pop("HOSTNAME", None)
    with mock.patch.dict(os.environ, {**clean, **environ}, clear=True):
        try:
            return load_settings(path)
        except ConfigError as exc:
            return str(exc)


def test_load_settings_resolves_auto_to_the_pods_shard_and_says_where_from(
    tmp_path: Path,
) -> None:
    settings = _load(tmp_path, "shard = auto\nshard-count = 3", OCSD_POD_INDEX="1")
    assert not isinstance(settings, str), settings
    assert settings.shard == Shard(2, 3)  # type: ignore[attr-defined]
    # dbids 101..110 with dbid % 3 == 1: 103, 106, 109
    assert shard_summary(settings) == (  # type: ignore[arg-type]
        "shard 2/3 (from pod index 1 in OCSD_POD_INDEX): 3 of 10 groups"
    )
    from_environment = _load(tmp_path, "", OCSD_SHARD="auto", OCSD_SHARD_COUNT="3", HOSTNAME="o-2")
    assert shard_summary(from_environment) == (  # type: ignore[arg-type]
        "shard 3/3 (from ordinal 2 of the HOSTNAME 'o-2'): 4 of 10 groups"
    )
    given = _load(tmp_path, "shard = 1/3\nshard-count = 3")
    assert shard_summary(given) == "shard 1/3: 3 of 10 groups"  # type: ignore[arg-type]
    assert shard_summary(_load(tmp_path, "")) is None  # type: ignore[arg-type]


def test_load_settings_refuses_auto_in_one_line_naming_the_place(tmp_path: Path) -> None:
    path = tmp_path / "ocsd.ini"
    assert _load(tmp_path, "shard = auto\nshard-count = 3", HOSTNAME="web") == (
        f"{path}:2: [ocsd] shard: auto: no pod ordinal: OCSD_POD_INDEX is not set and the "
        "HOSTNAME 'web' does not end in -<ordinal>; set OCSD_POD_INDEX (deploy/kubernetes "
        "sets it from the pod-index label) or give shard = K/N"
    )
    assert _load(tmp_path, "", OCSD_SHARD="auto", OCSD_POD_INDEX="0") == (
        "environment OCSD_SHARD ([ocsd] shard): auto needs shard-count (or "
        "OCSD_SHARD_COUNT): the number of instances, the StatefulSet's replicas"
    )
    assert _load(tmp_path, "shard-count = 3", OCSD_POD_INDEX="0") == (
        f"{path}:2: [ocsd] shard-count: 3 is set but shard is not, so every instance would "
        "run every group; set shard = auto (or OCSD_SHARD=auto)"
    )
    assert _load(tmp_path, "shard = 2/4", OCSD_SHARD_COUNT="3") == (
        "environment OCSD_SHARD_COUNT ([ocsd] shard-count): 3 does not match shard = 2/4 "
        "(N = 4); set shard = auto to take K from the pod, or remove one"
    )
    assert _load(tmp_path, "shard = auto\nshard-count = 0", OCSD_POD_INDEX="0") == (
        f"{path}:3: [ocsd] shard-count: '0' is out of range; allowed: a whole number from "
        "1 to 200000"
    )


def test_the_pod_index_variable_is_not_refused_as_an_unknown_option(tmp_path: Path) -> None:
    """OCSD_* variables that set no option are refused; the pod's ordinal is not one."""
    settings = _load(tmp_path, "", OCSD_POD_INDEX="4")
    assert not isinstance(settings, str), settings
    assert "did you mean OCSD_POD_INDEX?" in str(_load(tmp_path, "", OCSD_POD_INDX="4"))
