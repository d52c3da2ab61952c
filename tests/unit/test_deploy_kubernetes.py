"""Kubernetes manifests (deploy/kubernetes): every object validates, every service is covered.

No cluster needed. Kubernetes' own kinds are checked with ``kubernetes-validate`` (strict:
an unknown or misspelt field fails) against the API schemas of the oldest and newest versions
we support; the custom resources (KEDA, RabbitMQ operators) against the CRD schemas vendored
in ``deploy/kubernetes/schemas``. The overlays are rendered by ``kustomize()`` below, the subset
of kustomize these files use (resources, namespace, labels, images, strategic-merge and JSON
6902 patches); ``kubectl kustomize`` renders the same objects.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.common import topology

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
SCHEMAS = K8S / "schemas"
TARGETS = ["base", "overlays/staging", "overlays/production"]
KUBERNETES_VERSIONS = ["1.29", kubernetes_validate.latest_version()]
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication"),
                ("rabbitmq.com/v1beta1", "RabbitmqCluster"), ("rabbitmq.com/v1beta1", "Policy")}
# the Secret objects Portico's pods read; their values never live in the repository
SECRETS = {"portico-databases", "portico-rabbitmq-default-user", "portico-app", "portico-smtp"}


def service_names() -> list[str]:
    """Every folder under services/ with a service.py, except the shared kit."""
    return sorted(p.parent.name for p in (ROOT / "services").glob("*/service.py")
                  if p.parent.name != "common")


def load_generator():
    """deploy/kubernetes/generate.py, a script rather than a package module."""
    if "portico_deploy_generate" not in sys.modules:
        spec = importlib.util.spec_from_file_location("portico_deploy_generate",
                                                      K8S / "generate.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["portico_deploy_generate"]


# -- a kustomize subset ---------------------------------------------------------------------
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}


def strategic_merge(base, patch, field: str | None = None):
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value, key) if key in base else value
        return merged
    key = MERGE_KEYS.get(field or "")
    if key and isinstance(base, list) and isinstance(patch, list):
        merged = [dict(item) for item in base]
        for item in patch:
            match = next((i for i, old in enumerate(merged) if old.get(key) == item.get(key)),
                         None)
            if match is None:
                merged.append(item)
            else:
                merged[match] = strategic_merge(merged[match], item)
        return merged
    return copy.deepcopy(patch)


def json6902(doc: dict, operations: list[dict]) -> dict:
    doc = copy.deepcopy(doc)
    for operation in operations:
        *parents, last = [p.replace("~1", "/").replace("~0", "~")
                          for p in operation["path"].lstrip("/").split("/")]
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if operation["op"] in ("add", "replace"):
            if operation["op"] == "replace":
                assert last in node, f"replace of a missing path {operation['path']}"
            node[last] = operation["value"]
        elif operation["op"] == "remove":
            del node[last]
        else:
            raise AssertionError(f"unsupported op {operation['op']}")
    return doc


def matches(doc: dict, target: dict) -> bool:
    group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
    return (target.get("kind", doc["kind"]) == doc["kind"]
            and target.get("name", doc["metadata"]["name"]) == doc["metadata"]["name"]
            and target.get("group", group) == group)


def set_images(node, images: list[dict]):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    name = re.split(r"[:@]", container["image"], maxsplit=1)[0]
                    for image in images:
                        if image["name"] == name:
                            container["image"] = (f"{image.get('newName', name)}"
                                                  f":{image['newTag']}")
            else:
                set_images(value, images)
    elif isinstance(node, list):
        for item in node:
            set_images(item, images)


def load_docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomize(directory: Path) -> list[dict]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        docs += kustomize(path) if path.is_dir() else load_docs(path)
    for patch in spec.get("patches", []):
        body = yaml.safe_load((directory / patch["path"]).read_text()) if "path" in patch \
            else yaml.safe_load(patch["patch"])
        target = patch.get("target") or {"kind": body["kind"], "name": body["metadata"]["name"]}
        hits = [i for i, doc in enumerate(docs) if matches(doc, target)]
        assert hits, f"{directory}: patch {patch} matches no object"
        for i in hits:
            docs[i] = json6902(docs[i], body) if isinstance(body, list) \
                else strategic_merge(docs[i], body)
    for doc in docs:
        if "namespace" in spec:
            doc["metadata"]["namespace"] = spec["namespace"]
        for label in spec.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
        set_images(doc, spec.get("images", []))
    return docs


RENDERED = {target: kustomize(K8S / target) for target in TARGETS}


def find(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


# -- validation -----------------------------------------------------------------------------
def custom_schema(doc: dict) -> dict:
    group = doc["apiVersion"].replace("/", "-")
    return json.loads((SCHEMAS / f"{group}-{doc['kind']}.json").read_text())


def validate(doc: dict) -> None:
    """Raise if ``doc`` does not validate; every kind must have a schema."""
    if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
        jsonschema.Draft202012Validator(custom_schema(doc)).validate(doc)
        for embedded in embedded_core_objects(doc):
            validate(embedded)
        return
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def embedded_core_objects(doc: dict) -> list[dict]:
    """Core-typed fields of custom resources, wrapped in an object Kubernetes can check."""
    spec = doc["spec"]
    wrapped = []
    if doc["kind"] == "RabbitmqCluster":
        pod_spec = {"containers": [{"name": "rabbitmq", "image": "x",
                                    "resources": spec.get("resources", {})}]}
        if "affinity" in spec:
            pod_spec["affinity"] = spec["affinity"]
        wrapped.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "embedded"},
                        "spec": pod_spec})
    if doc["kind"] == "ScaledObject":
        behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}) \
            .get("behavior")
        if behavior:
            wrapped.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                            "metadata": {"name": "embedded"},
                            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"},
                                     "maxReplicas": 2, "behavior": behavior}})
    return wrapped


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates_against_its_schema(target):
    docs = RENDERED[target]
    assert len(docs) >= 5 * 4 + 9
    for doc in docs:
        try:
            validate(doc)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{target}: {doc['kind']} {doc['metadata']['name']}: {path}: "
                        f"{exc.message}")


def test_the_validation_is_strict_enough_to_catch_a_typo():
    deployment = copy.deepcopy(find(RENDERED["base"], "Deployment", "portico-documents"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    scaled = copy.deepcopy(find(RENDERED["base"], "ScaledObject", "portico-documents"))
    scaled["spec"]["triggers"][0]["metadata"]["protocol"] = "amqp"  # regex needs http
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)
    cluster = copy.deepcopy(find(RENDERED["base"], "RabbitmqCluster", "portico-rabbitmq"))
    cluster["spec"]["resources"]["request"] = cluster["spec"]["resources"].pop("requests")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(cluster)


def test_generated_service_manifests_are_current():
    generate = load_generator()
    assert list(generate.services()) == service_names()
    generated = sorted(p.name for p in (K8S / "base" / "services").glob("*.yaml"))
    assert generated == [f"{name}.yaml" for name in service_names()]
    for name in service_names():
        text = (K8S / "base" / "services" / f"{name}.yaml").read_text()
        assert text == generate.render(name), (
            f"deploy/kubernetes/base/services/{name}.yaml is stale: run "
            ".venv/bin/python deploy/kubernetes/generate.py")
    resources = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["resources"]
    assert {f"services/{name}.yaml" for name in service_names()} <= set(resources)


@pytest.mark.parametrize("service", service_names())
def test_every_service_has_deployment_probes_scaler_disruption_budget_and_migration(service):
    docs = RENDERED["overlays/production"]
    generate = load_generator()
    deployment = find(docs, "Deployment", f"portico-{service}")
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["python", "-m", "services.common.runner", service]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:4] == ["python", "-m", "ops.probe", service], probe
    assert "--live" in container["livenessProbe"]["exec"]["command"]
    assert "--live" not in container["readinessProbe"]["exec"]["command"]
    assert container["readinessProbe"]["timeoutSeconds"] > 8  # the RPC's own timeout is 8 s
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]
    env = {e["name"]: e for e in container["env"]}
    db_var = generate.database_variable(service)
    assert f"${{{db_var}:" in (ROOT / "services" / service / "config.yml").read_text()
    assert env[db_var]["valueFrom"]["secretKeyRef"] == {"name": "portico-databases",
                                                        "key": f"{service}-url"}
    assert "$(RABBITMQ_USERNAME)" in env["AMQP_URI"]["value"]
    (wait,) = pod["spec"]["initContainers"]
    assert wait["command"][:5] == ["python", "-m", "ops.probe", service, "--migrated"]

    budget = find(docs, "PodDisruptionBudget", f"portico-{service}")
    assert budget["spec"]["selector"]["matchLabels"] == selector
    assert budget["spec"]["maxUnavailable"] == 1

    scaled = find(docs, "ScaledObject", f"portico-{service}")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] >= 2  # production
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
    find(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    configmap = find(docs, "ConfigMap", "portico-config")
    assert trigger["metadata"]["hostFromEnv"] in configmap["data"]

    job = find(docs, "Job", f"portico-migrate-{service}")
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["portico", "migrate", service]
    assert {e["name"] for e in migrate["env"]} >= {db_var}
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items(), "the Deployment/PDB must not select it"


def service_queues() -> dict[str, set[str]]:
    queues = {name: {f"rpc-{name}"} for name in service_names()}
    for service, method, event_type in topology.SUBSCRIPTIONS:
        assert service in queues, f"{service} consumes {event_type} but has no manifests"
        queues[service].add(topology.consumer_queue_name(event_type, service, method))
    return queues


def test_each_scaler_counts_exactly_its_own_queues():
    """The trigger's regex is derived from nameko's naming; check it against SUBSCRIPTIONS."""
    queues = service_queues()
    everything = set().union(*queues.values()) | {
        topology.DEAD_LETTER_QUEUE, "rpc.reply-standalone_rpc_proxy-1c2d",
        "evt-portal-ContractCreated--notifications_v2.handle_x"}
    for service, own in queues.items():
        scaled = find(RENDERED["base"], "ScaledObject", f"portico-{service}")
        metadata = scaled["spec"]["triggers"][0]["metadata"]
        assert metadata["useRegex"] == "true" and metadata["operation"] == "sum"
        pattern = re.compile(metadata["queueName"])
        counted = {queue for queue in everything if pattern.search(queue)}
        assert counted == own, service


def test_broker_is_a_three_node_cluster_with_quorum_queues_and_dead_letters(monkeypatch):
    for target in TARGETS:
        docs = RENDERED[target]
        assert find(docs, "RabbitmqCluster", "portico-rabbitmq")["spec"]["replicas"] == 3
        assert find(docs, "ConfigMap", "portico-config")["data"]["PORTICO_QUEUE_TYPE"] == \
            "quorum"
    monkeypatch.setenv("PORTICO_QUEUE_TYPE", "quorum")
    arguments = topology.queue_arguments()
    assert arguments["x-queue-type"] == "quorum" and arguments["x-delivery-limit"] > 0
    policy = find(RENDERED["base"], "Policy", "portico-event-queues")["spec"]
    assert policy["definition"]["dead-letter-exchange"] == topology.DEAD_LETTER_EXCHANGE
    assert policy["applyTo"] == "quorum_queues"
    assert policy["rabbitmqClusterReference"]["name"] == "portico-rabbitmq"
    event_queues = set().union(*service_queues().values()) - {
        f"rpc-{name}" for name in service_names()}
    pattern = re.compile(policy["pattern"])
    assert all(pattern.search(queue) for queue in event_queues)
    assert not pattern.search(topology.DEAD_LETTER_QUEUE)


def test_gateway_service_ingress_autoscaler_and_probes():
    docs = RENDERED["overlays/production"]
    deployment = find(docs, "Deployment", "portico-gateway")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][-1] == "gateway"
    port = container["ports"][0]
    address = find(docs, "ConfigMap", "portico-config")["data"]["GATEWAY_ADDRESS"]
    assert address.endswith(f":{port['containerPort']}")
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["port"] == port["name"]
    assert {e["name"] for e in container["env"]} >= {"PORTICO_SECRET_KEY", "AMQP_URI"}
    service = find(docs, "Service", "portico-gateway")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    ingress = find(docs, "Ingress", "portico-gateway")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "portico-gateway", "port": {"name": "http"}}
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    hpa = find(docs, "HorizontalPodAutoscaler", "portico-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "portico-gateway"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2
    assert find(docs, "PodDisruptionBudget", "portico-gateway")["spec"]["selector"][
        "matchLabels"].items() <= labels.items()


def pod_containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("initContainers", []) + spec.get("containers", [])


@pytest.mark.parametrize("target", TARGETS)
def test_config_and_secrets_are_references_that_resolve(target):
    docs = RENDERED[target]
    assert not [d for d in docs if d["kind"] == "Secret"], "no secret values in the repository"
    configmaps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    operations = (ROOT / "docs" / "operations.md").read_text()
    for doc in docs:
        for container in pod_containers(doc):
            assert container["image"].split(":")[0].endswith("portico")
            known = set()
            for source in container.get("envFrom", []):
                known |= set(configmaps[source["configMapRef"]["name"]])
            for env in container.get("env", []):
                for reference in re.findall(r"\$\((\w+)\)", env.get("value", "")):
                    assert reference in known, f"{env['name']} uses $({reference}) before it"
                secret = env.get("valueFrom", {}).get("secretKeyRef")
                if secret:
                    assert secret["name"] in SECRETS
                    assert f"`{secret['name']}`" in operations, "docs/operations.md names it"
                known.add(env["name"])
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    config = configmaps["portico-config"]
    namespace = docs[0]["metadata"].get("namespace", "portico")
    assert f".{namespace}.svc:" in config["RABBITMQ_MANAGEMENT_URL"], \
        "KEDA reaches the management API by its full name, in this overlay's namespace"


def test_every_required_setting_of_every_config_is_provided():
    """A ``${NAME}`` without default in a config.yml must reach the container that reads it."""
    docs = RENDERED["overlays/production"]
    configmap = find(docs, "ConfigMap", "portico-config")["data"]
    for name in [*service_names(), "gateway"]:
        folder = ROOT / ("gateway" if name == "gateway" else f"services/{name}")
        required = re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", (folder / "config.yml").read_text())
        container = pod_containers(find(docs, "Deployment", f"portico-{name}"))[-1]
        provided = set(configmap) | {e["name"] for e in container["env"]}
        assert set(required) <= provided, name


# read by Portico's code (topology), by Kubernetes ($(VAR) expansion) or by KEDA, not config.yml
NOT_IN_CONFIG = {"PORTICO_QUEUE_TYPE", "RABBITMQ_HOST", "RABBITMQ_USERNAME", "RABBITMQ_PASSWORD",
                 "RABBITMQ_MANAGEMENT_URL"}


def config_variables(name: str) -> set[str]:
    folder = ROOT / ("gateway" if name == "gateway" else f"services/{name}")
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (folder / "config.yml").read_text()))


def test_every_setting_handed_to_a_process_is_one_it_reads():
    """No dead settings: a misspelt or renamed variable fails here instead of being ignored."""
    docs = RENDERED["overlays/production"]
    names = [*service_names(), "gateway"]
    read_somewhere = set().union(*(config_variables(name) for name in names)) | NOT_IN_CONFIG
    configmap = find(docs, "ConfigMap", "portico-config")["data"]
    assert set(configmap) <= read_somewhere, set(configmap) - read_somewhere
    for name in names:
        container = pod_containers(find(docs, "Deployment", f"portico-{name}"))[-1]
        given = {e["name"] for e in container["env"]}
        assert given <= config_variables(name) | NOT_IN_CONFIG, (name, given)


def test_the_kustomize_subset_merges_like_kustomize():
    base = {"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A",
                                                                         "value": "1"}]}],
                     "rules": [{"host": "old"}]}}
    patch = {"spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}],
                      "rules": [{"host": "new"}]}}
    merged = strategic_merge(base, patch)
    assert merged["spec"]["containers"][0]["image"] == "x"
    assert [e["name"] for e in merged["spec"]["containers"][0]["env"]] == ["A", "B"]
    assert merged["spec"]["rules"] == [{"host": "new"}]  # no merge key: replaced
    assert json6902({"spec": {"n": 1}}, [{"op": "replace", "path": "/spec/n", "value": 2}]) \
        == {"spec": {"n": 2}}
