"""The Kubernetes work pool's base job template: prefect-kubernetes's default plus GPU scheduling.

    python -m driftloop.deployments.k8s_template            # rewrites deployments/kubernetes-job-template.json
    prefect work-pool create driftloop-k8s --type kubernetes \\
        --base-job-template deployments/kubernetes-job-template.json

Five job variables on top of the default template (image, namespace, cpu/memory, env, ...):
``gpu_count`` (an ``nvidia.com/gpu`` limit on the flow-run container), ``node_selector`` and
``tolerations`` (to land on tainted GPU nodes), and ``volumes`` / ``volume_mounts`` (the project's
data/, runs/ and models/ on one shared ReadWriteMany claim: the watcher, the retrain and the drift check
are separate pods that must see the same snapshots, registry and runs). Each is null by default, and a
null variable drops its key from the rendered Job, so the watcher and drift check get plain CPU pods;
the retrain deployment sets the GPU ones in ``prefect.yaml``, and every k8s deployment mounts the claim.
``tests/test_deploy.py`` renders the template with the worker's own ``KubernetesWorkerJobConfiguration``
and checks the stored file is current.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).with_name("kubernetes-job-template.json")

_OBJECTS = {"type": "array", "items": {"type": "object"}}


def _nullable(title: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A job variable that is ``schema`` or null (the default: a null variable drops its key from the Job)."""
    return {"title": title, "description": description, "anyOf": [schema, {"type": "null"}], "default": None}


JOB_VARIABLES: dict[str, dict[str, Any]] = {
    "gpu_count": _nullable(
        "GPUs",
        "nvidia.com/gpu limit of the flow-run container (needs the NVIDIA device plugin); null: none.",
        {"type": "integer", "minimum": 0},
    ),
    "node_selector": _nullable(
        "Node selector",
        "Node labels the pod must match, e.g. {'nvidia.com/gpu.present': 'true'}; null: any node.",
        {"type": "object", "additionalProperties": {"type": "string"}},
    ),
    "tolerations": _nullable(
        "Tolerations",
        "Pod tolerations, e.g. for GPU nodes tainted nvidia.com/gpu=present:NoSchedule; null: none.",
        _OBJECTS,
    ),
    "volumes": _nullable(
        "Volumes",
        "Pod volumes, e.g. a persistentVolumeClaim 'driftloop-project' named 'project'; null: none.",
        _OBJECTS,
    ),
    "volume_mounts": _nullable(
        "Volume mounts",
        "volumeMounts of the flow-run container, e.g. the claim's data/ at /opt/driftloop/data.",
        _OBJECTS,
    ),
}


def build_template() -> dict[str, Any]:
    """prefect-kubernetes's default base job template with the GPU and volume variables wired into the pod spec."""
    try:
        from prefect_kubernetes.worker import KubernetesWorker
    except ImportError:
        raise ImportError(
            "prefect-kubernetes is not installed: run `make install` (it installs the k8s extra) "
            "or pip install 'driftloop[k8s]'"
        ) from None
    template = copy.deepcopy(KubernetesWorker.get_default_base_job_template())
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    container["resources"]["limits"]["nvidia.com/gpu"] = "{{ gpu_count }}"
    pod["nodeSelector"] = "{{ node_selector }}"
    pod["tolerations"] = "{{ tolerations }}"
    pod["volumes"] = "{{ volumes }}"
    container["volumeMounts"] = "{{ volume_mounts }}"
    template["variables"]["properties"].update(copy.deepcopy(JOB_VARIABLES))
    return template


def render_job(template: dict[str, Any], job_variables: dict[str, Any]) -> dict[str, Any]:
    """The Job manifest a Kubernetes worker would submit for a deployment with these job variables.

    The variables are first checked against the template's schema, as the Prefect server does when a
    deployment is created; a wrong type raises ``jsonschema.ValidationError`` naming the variable.
    """
    import jsonschema
    from prefect.utilities.asyncutils import run_coro_as_sync
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    jsonschema.validate(job_variables, template["variables"])
    config = run_coro_as_sync(KubernetesWorkerJobConfiguration.from_template_and_values(template, job_variables))
    return config.job_manifest


def main() -> None:
    from driftloop.atomic import write_text

    write_text(TEMPLATE_PATH, json.dumps(build_template(), indent=2) + "\n")
    print(TEMPLATE_PATH)


if __name__ == "__main__":
    main()
