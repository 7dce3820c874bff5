"""deploy/kubernetes, checked offline: every manifest and the kustomize output validate
against the Kubernetes API schemas that ``kubernetes-validate`` ships (no cluster, no
network), and the parts that must agree do: the StatefulSet's replicas and the shard
count it passes, the probes and the control port, the volume and the image's outbox
path, the grace period and shutdown-grace, the sizing and the groups each pod runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import kubernetes_validate
import pytest
import yaml

from ocsd.config.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = DEPLOY / "kustomization.yaml"
#: The oldest Kubernetes the manifests are for (the apps.kubernetes.io/pod-index label
#: came in 1.28) and the newest whose schemas kubernetes-validate ships.
VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
#: Memory per group and per process (docs/benchmarks/RESULTS-scale.md: peak RSS 169 MiB
#: at 5,000 groups, 504 MiB at 20,000): the sizing comment of statefulset.yaml.
KIB_PER_GROUP = (504 - 169) * 1024 / 15_000
BASE_MIB = 169 - 5_000 * KIB_PER_GROUP / 1024


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.glob("*.yaml") if p != KUSTOMIZATION)


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kustomize(directory: Path = DEPLOY) -> list[dict[str, Any]]:
    """``kubectl kustomize`` (kustomize built into kubectl: the real renderer, offline)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with kustomize built in) is not installed: .ci/run installs it")
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return documents(done.stdout)


def validate(resource: dict[str, Any], version: str) -> None:
    """Strict: a field the API does not know (a typo) fails too."""
    try:
        kubernetes_validate.validate(resource, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        name = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        raise AssertionError(f"{name} (Kubernetes {version}): {exc.message}") from None


def one(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["kind"] == kind]
    return found


def container(statefulset: dict[str, Any]) -> dict[str, Any]:
    (found,) = statefulset["spec"]["template"]["spec"]["containers"]
    return dict(found)


def env_of(statefulset: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(statefulset)["env"]}


def dockerfile_env(name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    assert match, name
    return match[1]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    resources = documents(path.read_text(encoding="utf-8"))
    assert resources, f"{path.name} holds no resource"
    for resource in resources:
        validate(resource, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_kustomize_output_validates_against_the_kubernetes_schemas(version: str) -> None:
    rendered = kustomize()
    kinds = sorted(r["kind"] for r in rendered)
    assert kinds == [
        "ConfigMap",
        "ConfigMap",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "StatefulSet",
    ]
    for resource in rendered:
        validate(resource, version)


def test_replicas_shard_count_and_probes_agree() -> None:
    statefulset = one(kustomize(), "StatefulSet")
    spec, pod = statefulset["spec"], statefulset["spec"]["template"]["spec"]
    env, main = env_of(statefulset), container(statefulset)
    assert env["OCSD_SHARD"] == "auto"
    assert env["OCSD_SHARD_COUNT"] == str(spec["replicas"])
    assert env["OCSD_POD_INDEX"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
    }
    (port,) = main["ports"]
    assert port["containerPort"] == int(env["OCSD_CONTROL_PORT"])
    assert env["OCSD_CONTROL_HOST"] == "0.0.0.0"
    probes = {kind: main[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in (*probes.values(), main["startupProbe"]["httpGet"]):
        assert probe["port"] in (port["name"], port["containerPort"])
    service = one(kustomize(), "Service")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["port"] == port["containerPort"]
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    # the Service "ocsd" would inject OCSD_PORT, OCSD_SERVICE_HOST...: refused as options
    assert pod["enableServiceLinks"] is False
    # in-flight POSTs get min(http-response-timeout, shutdown-grace) before the kill
    assert float(env["OCSD_SHUTDOWN_GRACE"]) < pod["terminationGracePeriodSeconds"]


def test_changing_replicas_in_the_kustomization_changes_the_shard_count(tmp_path: Path) -> None:
    copy = tmp_path / "kubernetes"
    shutil.copytree(DEPLOY, copy)
    text = KUSTOMIZATION.read_text(encoding="utf-8")
    assert "    count: 3\n" in text
    (copy / "kustomization.yaml").write_text(text.replace("    count: 3\n", "    count: 5\n"))
    statefulset = one(kustomize(copy), "StatefulSet")
    assert statefulset["spec"]["replicas"] == 5
    assert env_of(statefulset)["OCSD_SHARD_COUNT"] == "5"


def test_the_pod_runs_as_the_images_user_with_a_read_only_root_and_its_outbox_on_the_volume() -> (
    None
):
    statefulset = one(documents((DEPLOY / "statefulset.yaml").read_text()), "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    main = container(statefulset)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(dockerfile_env("OCSD_UID"))
    assert pod["securityContext"]["runAsGroup"] == int(dockerfile_env("OCSD_GID"))
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    outbox = Path(dockerfile_env("OCSD_OUTBOX_PATH"))
    assert mounts[claim["metadata"]["name"]] == str(outbox.parent)
    assert Path(dockerfile_env("OCSD_DEAD_LETTER_PATH")).parent == outbox.parent
    assert mounts["tmp"] == "/tmp"  # the image's working directory
    assert main["args"][:3] == ["run", "--config", "/etc/ocsd/ocsd.ini"]
    assert mounts["config"] == "/etc/ocsd"


def pods_settings(tmp_path: Path, replicas: int) -> Iterator[Settings]:
    """The settings each pod loads: the ConfigMap's INI and the pod's environment."""
    rendered = kustomize()
    statefulset = one(rendered, "StatefulSet")
    ini = next(r for r in rendered if r["kind"] == "ConfigMap" and "ocsd.ini" in r["data"])
    receiver = next(r for r in rendered if r["kind"] == "ConfigMap" and r is not ini)
    config = tmp_path / "ocsd.ini"
    config.write_text(ini["data"]["ocsd.ini"], encoding="utf-8")
    plain = {k: v for k, v in env_of(statefulset).items() if isinstance(v, str)}
    plain["OCSD_SHARD_COUNT"] = str(replicas)
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("OCSD_")}
    image = {
        "OCSD_OUTBOX_PATH": str(tmp_path / "outbox.sqlite3"),  # the volume, here
        "OCSD_DEAD_LETTER_PATH": str(tmp_path / "deadletters.jsonl"),
    }
    for ordinal in range(replicas):
        pod = {**plain, **receiver["data"], **image, "OCSD_POD_INDEX": str(ordinal)}
        pod["OCSD_CONTROL_TOKEN"] = "a-token-for-this-test-only"
        with mock.patch.dict(os.environ, {**clean, **pod}, clear=True):
            yield load_settings(config)


def test_each_pod_loads_the_configmap_and_runs_its_own_shard_sized_as_requested(
    tmp_path: Path,
) -> None:
    statefulset = one(kustomize(), "StatefulSet")
    replicas = statefulset["spec"]["replicas"]
    owners: dict[int, int] = {}
    for ordinal, settings in enumerate(pods_settings(tmp_path, replicas)):
        assert str(settings.shard) == f"{ordinal + 1}/{replicas}"
        assert settings.delivers and settings.delivery_mode == "reliable"
        for group in settings.campaign_groups.values():
            if settings.in_shard(group.dbid):
                assert group.dbid not in owners, "a group in two shards"
                owners[group.dbid] = ordinal
    groups = len(settings.campaign_groups)
    assert len(owners) == groups, "every group in exactly one shard"
    per_pod = max(sum(1 for o in owners.values() if o == i) for i in range(replicas))
    resources = container(statefulset)["resources"]
    needed_mib = BASE_MIB + per_pod * KIB_PER_GROUP / 1024
    assert needed_mib <= mebibytes(resources["requests"]["memory"])
    # the request covers the 20,000 groups a pod is sized for (the measured 504 MiB)
    assert mebibytes(resources["requests"]["memory"]) >= BASE_MIB + 20_000 * KIB_PER_GROUP / 1024
    assert mebibytes(resources["limits"]["memory"]) == 1024


def mebibytes(quantity: str) -> float:
    units = {"Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]
