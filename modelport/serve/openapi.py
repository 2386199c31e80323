"""The OpenAPI 3 description of the REST API, served at ``/openapi.json``.

Written out rather than derived from route signatures: the routes read raw bodies (the binary
tensor extension), so the schemas here are the one place that says what a JSON body holds. The
tests fuzz the server from this document (schemathesis), so it must stay true to ``rest.py``.
"""
from __future__ import annotations

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_PARAMETERS = {"type": "object", "additionalProperties": True}
_DATATYPE = {"type": "string", "enum": ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                        "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16"]}
_SHAPE = {"type": "array", "items": {"type": "integer"}}
_TENSOR_METADATA = {"type": "object", "required": ["name", "datatype", "shape"],
                    "properties": {"name": {"type": "string"}, "datatype": _DATATYPE, "shape": _SHAPE}}
_INFER_REQUEST = {
    "type": "object", "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": _PARAMETERS,
        "inputs": {"type": "array", "items": {
            "type": "object", "required": ["name", "datatype", "shape"],
            "properties": {"name": {"type": "string"}, "datatype": _DATATYPE, "shape": _SHAPE,
                           "parameters": _PARAMETERS, "data": {"type": "array"}}}},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "parameters": _PARAMETERS}}},
    },
}
_INFER_RESPONSE = {
    "type": "object", "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name", "datatype", "shape"],
            "properties": {"name": {"type": "string"}, "datatype": _DATATYPE, "shape": _SHAPE,
                           "parameters": _PARAMETERS, "data": {"type": "array"}}}},
    },
}
_MODEL_METADATA = {
    "type": "object", "required": ["name", "platform", "inputs", "outputs"],
    "properties": {"name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
                   "platform": {"type": "string"}, "inputs": {"type": "array", "items": _TENSOR_METADATA},
                   "outputs": {"type": "array", "items": _TENSOR_METADATA}},
}
_STATS = {"type": "object", "required": ["model_stats"],
          "properties": {"model_stats": {"type": "array", "items": {"type": "object"}}}}
_PREDICT_REQUEST = {
    "type": "object",
    "properties": {"signature_name": {"type": "string"}, "instances": {"type": "array"},
                   "inputs": {"oneOf": [{"type": "array"}, {"type": "object"}]}},
}
_PREDICT_RESPONSE = {"type": "object", "properties": {"predictions": {"type": "array"}, "outputs": {}}}
_GENERATE_REQUEST = {
    "type": "object",
    "properties": {
        "text_input": {"type": "string"}, "input_ids": {"type": "array", "items": {"type": "integer"}},
        "id": {"type": "string"},
        "parameters": {"type": "object", "properties": {"max_tokens": {"type": "integer"}, "stop": {"type": "boolean"},
                                                        "temperature": {"type": "number"},
                                                        "do_sample": {"type": "boolean"}}},
    },
}
_GENERATE_RESPONSE = {
    "type": "object", "required": ["model_name", "model_version", "output_ids"],
    "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
                   "output_ids": {"type": "array", "items": {"type": "integer"}}, "text_output": {"type": "string"},
                   "tokens_per_second": {"type": "number", "nullable": True}},
}
_TF_STATUS = {"type": "object", "required": ["model_version_status"],
              "properties": {"model_version_status": {"type": "array", "items": {"type": "object"}}}}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _answers(ok: dict | None, ok_text: str, *errors: int) -> dict:
    responses = {"200": {"description": ok_text, **(_json(ok) if ok is not None else {})}}
    for status in errors:
        responses[str(status)] = {"description": _ERROR_TEXT[status], **_json(_ERROR)}
    return responses


_ERROR_TEXT = {400: "a bad request, or (health and ready routes) not ready", 403: "not allowed on this server",
               404: "no such model or version", 413: "the body is larger than the server takes",
               415: "an unsupported Content-Encoding", 500: "the model failed on this request",
               503: "the model is not ready, its queue is full, or the server is draining",
               504: "the model did not answer within the request timeout"}
_INFER_ERRORS = (400, 404, 413, 415, 500, 503, 504)


def openapi_document(version: str, examples: dict | None = None) -> dict:
    """The document; ``examples`` (a served model's name and version, a working infer body and a
    working predict body) become the examples of the path parameters and request bodies."""
    examples = examples or {}

    def _path_parameter(name: str) -> dict:
        schema = {"type": "string"}
        if name in examples:
            schema["example"] = examples[name]
        return {"name": name, "in": "path", "required": True, "schema": schema}

    def _body(schema: dict, example_key: str) -> dict:
        content = {"schema": schema}
        if example_key in examples:
            content["example"] = examples[example_key]
        return {"required": True, "content": {"application/json": content}}

    paths: dict[str, dict] = {
        "/v2/health/live": {"get": {"summary": "Server liveness",
                                    "responses": {"200": {"description": "live"}, "400": {"description": "not live"}}}},
        "/v2/health/ready": {"get": {"summary": "Server readiness (every model ready, not draining)",
                                     "responses": {"200": {"description": "ready"},
                                                   "400": {"description": "not ready"}}}},
        "/v2": {"get": {"summary": "Server metadata", "responses": _answers(
            {"type": "object", "required": ["name", "version", "extensions"],
             "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                            "extensions": {"type": "array", "items": {"type": "string"}}}}, "server metadata")}},
        "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format, Triton's metric names)",
                             "responses": {"200": {"description": "the metrics",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/v2/models/stats": {"get": {"summary": "Statistics of every ready model",
                                     "responses": _answers(_STATS, "statistics", 404)}},
        "/v2/repository/index": {"post": {
            "summary": "The models of the repository with their state",
            "requestBody": {"required": False, **_json({"type": "object", "properties": {"ready": {"type": "boolean"}}})},
            "responses": _answers({"type": "array", "items": {"type": "object"}}, "the index", 400, 413)}},
    }
    region = {"name": "region", "in": "path", "required": True, "schema": {"type": "string"}}
    status = {"type": "array", "items": {"type": "object", "required": ["name", "key", "offset", "byte_size"],
                                         "properties": {"name": {"type": "string"}, "key": {"type": "string"},
                                                        "offset": {"type": "integer"},
                                                        "byte_size": {"type": "integer"}}}}
    paths["/v2/systemsharedmemory/status"] = {"get": {
        "summary": "Registered system shared memory regions", "responses": _answers(status, "the regions")}}
    paths["/v2/systemsharedmemory/region/{region}/status"] = {"get": {
        "summary": "One registered system shared memory region", "parameters": [region],
        "responses": _answers(status, "the region", 400, 404)}}
    paths["/v2/systemsharedmemory/region/{region}/register"] = {"post": {
        "summary": "Register a POSIX shared memory object in /dev/shm (servers started with --allow-client-shm)",
        "parameters": [region],
        "requestBody": {"required": True, **_json({"type": "object", "required": ["key", "byte_size"], "properties": {
            "key": {"type": "string"}, "offset": {"type": "integer"}, "byte_size": {"type": "integer"}}})},
        "responses": _answers(None, "registered", 400, 403, 413)}}
    for path in ("/v2/systemsharedmemory/unregister", "/v2/systemsharedmemory/region/{region}/unregister"):
        paths[path] = {"post": {"summary": "Unregister one region, or all of them",
                                **({"parameters": [region]} if "{region}" in path else {}),
                                "responses": _answers(None, "unregistered", 400, 403)}}
    for verb in ("load", "unload"):
        paths[f"/v2/repository/models/{{model}}/{verb}"] = {"post": {
            "summary": f"{verb.title()} a model", "parameters": [_path_parameter("model")],
            "requestBody": {"required": False, **_json({"type": "object"})},
            "responses": {"200": {"description": f"{verb}ed"},
                          **{str(s): {"description": _ERROR_TEXT[s], **_json(_ERROR)} for s in (400, 403, 404, 413)}}}}
    for prefix, params in (("/v2/models/{model}", ["model"]),
                           ("/v2/models/{model}/versions/{version}", ["model", "version"])):
        parameters = [_path_parameter(p) for p in params]
        paths[prefix] = {"get": {"summary": "Model metadata", "parameters": parameters,
                                 "responses": _answers(_MODEL_METADATA, "model metadata", 404, 503)}}
        paths[prefix + "/ready"] = {"get": {"summary": "Model readiness", "parameters": parameters, "responses": {
            "200": {"description": "ready"}, "400": {"description": "not ready"},
            "404": {"description": _ERROR_TEXT[404], **_json(_ERROR)}}}}
        paths[prefix + "/config"] = {"get": {"summary": "Model configuration (Triton's ModelConfig as JSON)",
                                             "parameters": parameters,
                                             "responses": _answers({"type": "object"}, "the config", 404, 503)}}
        paths[prefix + "/stats"] = {"get": {"summary": "Model statistics", "parameters": parameters,
                                            "responses": _answers(_STATS, "statistics", 404)}}
        paths[prefix + "/infer"] = {"post": {
            "summary": "Inference (JSON tensors, or a JSON header followed by binary tensors whose length is "
                       "the Inference-Header-Content-Length header)",
            "parameters": parameters,
            "requestBody": _body(_INFER_REQUEST, "infer"),
            "responses": _answers(_INFER_RESPONSE, "the outputs", *_INFER_ERRORS)}}
        paths[prefix + "/generate"] = {"post": {
            "summary": "Greedy generation by a decoder folder, its key/value cache kept server-side (text_input "
                       "with the folder's tokenizer, or input_ids)",
            "parameters": parameters, "requestBody": _body(_GENERATE_REQUEST, "generate"),
            "responses": _answers(_GENERATE_RESPONSE, "the new tokens", *_INFER_ERRORS)}}
        stream = _answers(None, "server-sent events, one per new token, the last with finished true",
                          *_INFER_ERRORS)
        stream["200"]["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
        paths[prefix + "/generate_stream"] = {"post": {
            "summary": "As /generate, one server-sent event per new token", "parameters": parameters,
            "requestBody": _body(_GENERATE_REQUEST, "generate"), "responses": stream}}
    for prefix, params in (("/v1/models/{model}", ["model"]),
                           ("/v1/models/{model}/versions/{version}", ["model", "version"])):
        parameters = [_path_parameter(p) for p in params]
        paths[prefix] = {"get": {"summary": "TF Serving model status", "parameters": parameters,
                                 "responses": _answers(_TF_STATUS, "status", 404)}}
        paths[prefix + "/metadata"] = {"get": {"summary": "TF Serving model metadata (signature_def)",
                                               "parameters": parameters,
                                               "responses": _answers({"type": "object"}, "metadata", 404, 503)}}
        paths[prefix + ":predict"] = {"post": {
            "summary": "TF Serving predict (row 'instances' or columnar 'inputs')", "parameters": parameters,
            "requestBody": _body(_PREDICT_REQUEST, "predict"),
            "responses": _answers(_PREDICT_RESPONSE, "the predictions", *_INFER_ERRORS)}}
    return {"openapi": "3.0.3",
            "info": {"title": "modelport serve", "version": version or "0",
                     "description": "Open Inference Protocol v2 (with Triton's binary tensor extension) and "
                                    "TF Serving REST, on one data plane."},
            "paths": paths}
