"""prefect.yaml, the Kubernetes job template and the Dockerfile: checked offline, so a typo fails CI."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prefect_yaml() -> dict:
    return yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))


def _deployments(spec: dict, pool: str) -> dict[str, dict]:
    return {d["name"]: d for d in spec["deployments"] if d["work_pool"]["name"] == pool}


def _render(job_variables: dict, template: dict | None = None) -> dict:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from driftloop.deployments.k8s_template import TEMPLATE_PATH, render_job

    template = template or json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    # Rendering needs no server: an unreachable API URL proves it (and keeps Prefect from starting one).
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        return render_job(template, job_variables)


def test_stored_job_template_is_the_generated_one():
    from driftloop.deployments.k8s_template import TEMPLATE_PATH, build_template

    stored = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    assert stored == build_template(), "run: python -m driftloop.deployments.k8s_template"


def test_retrain_gets_a_gpu_on_kubernetes_and_the_others_do_not(prefect_yaml):
    k8s = _deployments(prefect_yaml, "driftloop-k8s")
    assert set(k8s) == {"watch-incoming-k8s", "retrain-k8s", "drift-check-k8s"}
    for name, deployment in k8s.items():
        variables = {**deployment["work_pool"]["job_variables"], "image": "registry.example/driftloop:cuda"}
        job = _render(variables)
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == "registry.example/driftloop:cuda"
        assert container["env"] == {"DRIFTLOOP_CACHE": "/cache/driftloop"}
        limits = container["resources"]["limits"]
        if name == "retrain-k8s":
            assert limits == {"nvidia.com/gpu": 1}
            assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
            assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        else:
            assert "nvidia.com/gpu" not in limits and "nodeSelector" not in pod and "tolerations" not in pod
        assert container["resources"]["requests"]["memory"] == variables["memory_request"]
        # Every pod sees the same snapshots, registry and runs: one shared claim under the image's project root.
        assert pod["volumes"] == [{"name": "project", "persistentVolumeClaim": {"claimName": "driftloop-project"}}]
        assert {m["mountPath"]: m["subPath"] for m in container["volumeMounts"]} == {
            f"/opt/driftloop/{d}": d for d in ("data", "runs", "models")
        }


def test_a_wrong_job_variable_or_a_broken_template_fails():
    import jsonschema

    from driftloop.deployments.k8s_template import build_template

    with pytest.raises(jsonschema.ValidationError, match="not-a-list"):
        _render({"gpu_count": 1, "tolerations": "not-a-list"})
    with pytest.raises(jsonschema.ValidationError):
        _render({"gpu_count": -1})
    broken = build_template()
    del broken["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"]
    with pytest.raises(ValueError, match="containers"):
        _render({}, broken)


def test_prefect_yaml_mirrors_the_served_deployments(prefect_yaml):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.client.schemas.schedules import construct_schedule
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    from driftloop.deployments.serve import build_deployments

    served = {d.name: d for d in build_deployments(str(REPO / "configs" / "sms_spam.yaml"))}
    for pool, suffix in (("driftloop-process", ""), ("driftloop-k8s", "-k8s")):
        declared = _deployments(prefect_yaml, pool)
        assert set(declared) == {name + suffix for name in served}, pool
        for name, runner in served.items():
            spec = declared[name + suffix]
            assert spec["entrypoint"] == runner.entrypoint
            assert spec["parameters"] == {"config_path": "configs/sms_spam.yaml", "overrides": []}
            schedules = [construct_schedule(**s) for s in spec.get("schedules", [])]
            expected = [s.schedule for s in runner.schedules]
            assert [getattr(s, "cron", None) for s in schedules] == [getattr(s, "cron", None) for s in expected]
            assert [getattr(s, "interval", None) for s in schedules] == [getattr(s, "interval", None) for s in expected]
            limit = ConcurrencyLimitConfig(**spec["concurrency_limit"])
            assert limit.limit == runner.concurrency_limit
            assert limit.collision_strategy == runner.concurrency_options.collision_strategy.value
            triggers = [
                DeploymentEventTrigger(**{k: v for k, v in t.items() if k != "type"}) for t in spec.get("triggers", [])
            ]
            assert len(triggers) == len(runner.triggers)
            for got, want in zip(triggers, runner.triggers):
                assert got.expect == want.expect and got.match == want.match
                assert (got.threshold, got.within, got.schedule_after) == (
                    want.threshold,
                    want.within,
                    want.schedule_after,
                )
                assert got.within == timedelta(seconds=1)


# ---- Dockerfile: installs exactly what `make install` installs ----------------------------


def test_dockerfile_installs_what_make_install_installs():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    steps = re.sub(r"\\\n\s*", " ", dockerfile)
    runs = [line[4:] for line in steps.splitlines() if line.startswith("RUN ")]
    # It runs make install itself, with the Makefile's interpreter, from the copied checkout ...
    install = [r for r in runs if "make install" in r]
    assert len(install) == 1 and "make install PYTHON=python3.11" in install[0]
    assert re.search(r"^PYTHON \?= python3\.11$", makefile, flags=re.M)
    assert "COPY . ." in dockerfile and "WORKDIR /opt/driftloop" in dockerfile
    # ... after pre-installing only torch, at the Makefile's pin, from the index the build argument picks.
    (torch_pin,) = re.findall(r"pip install -q (torch==[0-9.]+)", makefile)
    pre = [w for w in install[0].split("make install")[0].split() if "==" in w]
    assert pre == [torch_pin]
    assert re.search(r"^ARG BASE=python:3\.11", dockerfile, flags=re.M) and "nvidia/cuda" in dockerfile
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "data", "runs", "models"} <= set(ignored)
