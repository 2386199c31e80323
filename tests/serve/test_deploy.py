"""examples/deploy/ validates without a cluster: the plain Deployment/Service/HPA against Kubernetes'
own schemas (kubernetes-validate, strict: unknown fields refused), the KServe ServingRuntime and
InferenceService against KServe's CRD schemas (tests/data/kserve/, unknown fields refused as with
`kubectl apply --validate=strict`); their container args parse as `modelport serve` options and
their probes and metrics paths answer on a running server."""
from __future__ import annotations

import copy
import gzip
import json

import jsonschema
import kubernetes_validate
import pytest
import requests
import yaml

from tests.serve.conftest import REPO

DEPLOY = REPO / "examples" / "deploy"
KSERVE_SCHEMAS = REPO / "tests" / "data" / "kserve"
KUBERNETES_VERSION = "1.33"


def _documents(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _strict(schema):
    """A CRD schema that refuses unknown fields where the CRD does not say to keep them."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _kserve_validator(name):
    return jsonschema.Draft7Validator(_strict(json.loads(gzip.decompress((KSERVE_SCHEMAS / name).read_bytes()))))


def test_plain_kubernetes_manifests_validate_strictly():
    documents = _documents(DEPLOY / "kubernetes" / "modelport.yaml")
    assert [d["kind"] for d in documents] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    typo = copy.deepcopy(documents[0])
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = typo["spec"]["template"]["spec"][
        "containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):   # the check can fail
        kubernetes_validate.validate(typo, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("manifest,schema", [("servingruntime.yaml", "servingruntime-v1alpha1.schema.json.gz"),
                                             ("inferenceservice.yaml", "inferenceservice-v1beta1.schema.json.gz")])
def test_kserve_manifests_validate_against_the_crds(manifest, schema):
    (document,) = _documents(DEPLOY / "kserve" / manifest)
    validator = _kserve_validator(schema)
    validator.validate(document)
    typo = copy.deepcopy(document)
    typo["spec"]["protocolVersionz"] = ["v2"]
    assert list(validator.iter_errors(typo)), "a misspelt field must be refused"


def test_the_runtime_serves_what_the_inference_service_asks_for():
    (runtime,) = _documents(DEPLOY / "kserve" / "servingruntime.yaml")
    (service,) = _documents(DEPLOY / "kserve" / "inferenceservice.yaml")
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]


def _container_args():
    (runtime,) = _documents(DEPLOY / "kserve" / "servingruntime.yaml")
    deployment = _documents(DEPLOY / "kubernetes" / "modelport.yaml")[0]
    return [runtime["spec"]["containers"][0]["args"], deployment["spec"]["template"]["spec"]["containers"][0]["args"]]


@pytest.mark.parametrize("args", _container_args(), ids=["kserve", "kubernetes"])
def test_container_args_are_modelport_serve_options(args):
    import typer

    from modelport.cli import app
    command = typer.main.get_command(app)
    assert args[0] == "serve"
    serve = command.get_command(None, "serve")
    args = [a.replace("{{.Name}}", "resnet18") for a in args[1:]]
    context = serve.make_context("serve", args)   # raises on an unknown option or a bad value
    assert context.params["host"] == "0.0.0.0" and context.params["no_model_control"] is True


def test_probes_and_metrics_paths_answer(cnn_server):
    (runtime,) = _documents(DEPLOY / "kserve" / "servingruntime.yaml")
    container = runtime["spec"]["containers"][0]
    paths = [container[probe]["httpGet"]["path"] for probe in ("readinessProbe", "livenessProbe")]
    paths.append(runtime["spec"]["annotations"]["prometheus.kserve.io/path"])
    for path in paths:
        assert requests.get(f"{cnn_server.url}{path}", timeout=10).status_code == 200, path
