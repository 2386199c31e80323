"""REST: the Open Inference Protocol v2 (with Triton's binary tensor extension) and TF Serving's API.

A Starlette app: every route reads its raw body itself (the binary extension puts bytes after a JSON
header, so no framework body validation applies), parses it with orjson, and hands the data plane
protocol-free requests. A :class:`~modelport.errors.ServeError` becomes its status with
``{"error": message}``, the body both protocols use.
"""
from __future__ import annotations

import asyncio
import logging
import time
import zlib

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..errors import ServeError, first_line
from . import generation, logs, metrics, shared_memory
from .codec import Raw, datatype_of, encode_raw, json_values
from .dataplane import DataPlane, InferInput, InferRequest, InferResponse, RequestedOutput
from .openapi import openapi_document
from .repository import config_dict

log = logging.getLogger("modelport.serve")
_JSON = "application/json"
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def json_response(content, status: int = 200, headers=None) -> Response:
    return Response(orjson.dumps(content, option=_NUMPY), status_code=status, media_type=_JSON, headers=headers)


def error_response(message: str, status: int) -> Response:
    return json_response({"error": message}, status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before reading it all when the
    client says its length); gzip/deflate bodies are inflated under the same limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServeError(f"the request body is {int(declared)} bytes; this server takes at most {limit} "
                         "(--max-body-mb)", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServeError(f"the request body exceeds {limit} bytes (--max-body-mb)", status=413)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise ServeError(f"the body is not valid {encoding} data: {exc}") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise ServeError(f"the inflated request body exceeds {limit} bytes (--max-body-mb)", status=413)
    elif encoding not in ("", "identity"):
        raise ServeError(f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none", status=415)
    return body


def parse_json(data) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ServeError(f"the body is not valid JSON: {exc}") from None


# -- OIP v2 inference: JSON and binary tensors ----------------------------------------------------

def parse_infer(body: bytes, header_length: str | None, model: str, version: str) -> InferRequest:
    """An OIP v2 infer body (JSON, or a JSON header followed by binary tensors) as an InferRequest."""
    binary = memoryview(b"")
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ServeError(f"Inference-Header-Content-Length is {header_length!r}, but the body has "
                             f"{len(body)} bytes")
        split = int(header_length)
        header, binary = parse_json(memoryview(body)[:split]), memoryview(body)[split:]
    else:
        header = parse_json(body)
    if not isinstance(header, dict):
        raise ServeError("the inference request must be a JSON object with 'inputs'")
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ServeError("the inference request needs 'inputs': a non-empty list of tensors")
    offset, tensors = 0, []
    for index, item in enumerate(inputs):
        name, datatype, shape, parameters = _tensor_header(item, f"inputs[{index}]")
        size = parameters.get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ServeError(f"input {name!r}: binary_data_size must be a byte count, got {size!r}")
            if offset + size > len(binary):
                raise ServeError(f"input {name!r}: binary_data_size {size} runs past the {len(binary)} bytes "
                                 "of binary data after the JSON header")
            values = Raw(binary[offset:offset + size])
            offset += size
        elif "data" in item:
            values = item["data"]
            if not isinstance(values, list):
                values = [values]
        elif "shared_memory_region" in parameters:  # read from the region by the data plane
            values = None
        else:
            raise ServeError(f"input {name!r} has neither 'data' nor parameters.binary_data_size "
                             "(nor shared_memory_region)")
        tensors.append(InferInput(name, datatype, shape, values, parameters))
    if offset != len(binary):
        raise ServeError(f"{len(binary) - offset} bytes of binary data after the JSON header belong to no input "
                         "(check each input's binary_data_size)")
    outputs = []
    if not isinstance(header.get("outputs", []), list):
        raise ServeError("'outputs' must be a list of {\"name\": ...} objects")
    for index, item in enumerate(header.get("outputs", [])):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ServeError(f"outputs[{index}] must be an object with a 'name'")
        parameters = _parameters(item, f"output {item['name']!r}")
        outputs.append(RequestedOutput(item["name"], parameters))
    request_id = header.get("id", "")
    if not isinstance(request_id, str):
        raise ServeError("'id' must be a string")
    return InferRequest(model, version, request_id, tensors, outputs, _parameters(header, "the request"))


def _tensor_header(item, where: str):
    if not isinstance(item, dict):
        raise ServeError(f"{where} must be an object with name, datatype, shape and data")
    name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    if not isinstance(name, str):
        raise ServeError(f"{where} needs a 'name' string")
    if not isinstance(datatype, str):
        raise ServeError(f"input {name!r} needs a 'datatype' string (e.g. \"FP32\")")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise ServeError(f"input {name!r} needs a 'shape': a list of integers")
    return name, datatype, shape, _parameters(item, f"input {name!r}")


def _parameters(item: dict, where: str) -> dict:
    parameters = item.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ServeError(f"the parameters of {where} must be an object")
    return parameters


def infer_body(response: InferResponse, request: InferRequest) -> tuple[bytes, dict]:
    """The response body and headers: JSON data, or binary tensors after a JSON header where the
    request asked for them (per output ``binary_data``, or ``binary_data_output`` for all)."""
    binary_default = bool(request.parameters.get("binary_data_output", False))
    outputs, blobs = [], []
    for tensor in response.outputs:
        entry = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.array.shape)}
        if tensor.in_shared_memory:  # its bytes are in the client's region; say where, carry none
            entry["parameters"] = {key: tensor.parameters[key] for key in shared_memory.PARAMETERS
                                   if key in tensor.parameters}
        elif tensor.parameters.get("binary_data", binary_default):
            blob = encode_raw(tensor.array)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = json_values(tensor.array)
        outputs.append(entry)
    header = {"model_name": response.model, "model_version": response.version, "outputs": outputs}
    if response.id:
        header["id"] = response.id
    head = orjson.dumps(header, option=_NUMPY)
    if not blobs:
        return head, {"content-type": _JSON}
    return b"".join([head, *blobs]), {"content-type": "application/octet-stream",
                                       "inference-header-content-length": str(len(head))}


# -- TF Serving REST --------------------------------------------------------------------------------

_TF_DTYPES = {"BOOL": "DT_BOOL", "UINT8": "DT_UINT8", "UINT16": "DT_UINT16", "UINT32": "DT_UINT32",
              "UINT64": "DT_UINT64", "INT8": "DT_INT8", "INT16": "DT_INT16", "INT32": "DT_INT32",
              "INT64": "DT_INT64", "FP16": "DT_HALF", "FP32": "DT_FLOAT", "FP64": "DT_DOUBLE",
              "BYTES": "DT_STRING", "BF16": "DT_BFLOAT16"}
_TF_STATES = {"READY": ("AVAILABLE", "OK"), "LOADING": ("LOADING", "OK"), "UNAVAILABLE": ("END", "UNAVAILABLE")}


def parse_predict(body: bytes, entry) -> tuple[InferRequest, str]:
    """A TF Serving ``:predict`` body (row ``instances`` or columnar ``inputs``) as an InferRequest;
    also returns which of the two formats it used, so the answer comes back in the same one."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise ServeError("the predict request must be a JSON object with 'instances' or 'inputs'")
    signature = payload.get("signature_name", "serving_default")
    if signature not in ("", "serving_default"):
        raise ServeError(f"signature {signature!r} does not exist; this model has 'serving_default'")
    if ("instances" in payload) == ("inputs" in payload):
        raise ServeError("give exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    names = [spec.name for spec in entry.inputs]
    if "instances" in payload:
        rows, style = payload["instances"], "row"
        if not isinstance(rows, list) or not rows:
            raise ServeError("'instances' must be a non-empty list, one item per example")
        if all(isinstance(row, dict) and not _is_b64(row) for row in rows):
            columns = {}
            for name in names:
                if any(name not in row for row in rows):
                    raise ServeError(f"every instance needs input {name!r} (the model's inputs: {names})")
                columns[name] = [row[name] for row in rows]
            unknown = sorted({key for row in rows for key in row} - set(names))
            if unknown:
                raise ServeError(f"the model has no input {unknown[0]!r}; its inputs: {names}")
        elif len(names) == 1:
            columns = {names[0]: rows}
        else:
            raise ServeError(f"the model has {len(names)} inputs {names}: each instance must be an object "
                             "naming them")
    else:
        value, style = payload["inputs"], "columnar"
        if isinstance(value, dict) and not _is_b64(value):
            columns = value
        elif len(names) == 1:
            columns = {names[0]: value}
        else:
            raise ServeError(f"the model has {len(names)} inputs {names}: 'inputs' must be an object naming them")
    specs = {spec.name: spec for spec in entry.inputs}
    tensors = []
    for name, value in columns.items():
        spec = specs.get(name)
        datatype = datatype_of(spec.dtype) if spec is not None else "FP32"
        value = _unwrap_b64(name, value, datatype)
        try:
            array = np.array(value, dtype=object if datatype == "BYTES" else None)
        except ValueError:
            raise ServeError(f"input {name!r}: the values are a ragged nested list") from None
        if array.dtype.kind in "US":
            raise ServeError(f"input {name!r} is {datatype}; the request sends strings")
        tensors.append(InferInput(name, datatype, list(array.shape), array))
    return InferRequest(entry.name, entry.version, inputs=tensors), style


def _is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _unwrap_b64(name: str, value, datatype: str):
    """TF Serving's ``{"b64": "..."}`` stands for the bytes of one string element."""
    import base64
    import binascii
    if _is_b64(value):
        if datatype != "BYTES":
            raise ServeError(f"input {name!r} is {datatype}: {{\"b64\": ...}} carries bytes for string inputs only")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError):
            raise ServeError(f"input {name!r}: the b64 value is not valid base64") from None
    if isinstance(value, list):
        return [_unwrap_b64(name, item, datatype) for item in value]
    if isinstance(value, dict):
        raise ServeError(f"input {name!r}: unexpected object in the values (only {{\"b64\": ...}} is allowed)")
    return value


def predict_body(response: InferResponse, style: str) -> dict:
    outputs = {t.name: t.array.astype(np.float32) if t.array.dtype.name == "bfloat16" else t.array
               for t in response.outputs}
    if any(a.dtype.kind in "OSU" for a in outputs.values()):
        outputs = {n: [_tf_string(v) for v in a.ravel()] if a.dtype.kind in "OSU" else a for n, a in outputs.items()}
    if style == "columnar":
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    rows = len(next(iter(outputs.values())))
    return {"predictions": [{name: value[i] for name, value in outputs.items()} for i in range(rows)]}


def _tf_string(value) -> object:
    try:
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)
    except UnicodeDecodeError:
        import base64
        return {"b64": base64.b64encode(value).decode()}


def tf_status(dataplane: DataPlane, name: str, version: str) -> dict:
    versions = dataplane.repository.models.get(name)
    if versions is None:
        raise ServeError(f"Could not find any versions of model {name}", status=404)
    chosen = [versions[version]] if version and version in versions else list(versions.values())
    if version and version not in versions:
        raise ServeError(f"Could not find version {version} of model {name}", status=404)
    status = []
    for entry in chosen:
        state, code = _TF_STATES.get(entry.state, ("END", "UNKNOWN"))
        status.append({"version": entry.version, "state": state,
                       "status": {"error_code": code, "error_message": entry.reason}})
    return {"model_version_status": status}


def tf_metadata(dataplane: DataPlane, name: str, version: str) -> dict:
    entry = dataplane.repository.get(name, version)

    def signature(specs):
        return {spec.name: {"dtype": _TF_DTYPES[datatype_of(spec.dtype)], "name": spec.name,
                            "tensor_shape": {"dim": [{"size": str(-1 if d is None else d), "name": ""}
                                                     for d in spec.shape], "unknown_rank": False}}
                for spec in specs}
    return {"model_spec": {"name": entry.name, "signature_name": "", "version": entry.version},
            "metadata": {"signature_def": {"signature_def": {"serving_default": {
                "inputs": signature(entry.inputs), "outputs": signature(entry.outputs),
                "method_name": "tensorflow/serving/predict"}}}}}


def _examples(dataplane: DataPlane) -> dict | None:
    """A working request for the first ready model (zeros of the right shapes), as the OpenAPI
    document's examples: what a reader copies, and where a fuzzer starts."""
    ready = [row for row in dataplane.repository.index() if row["state"] == "READY"]
    if not ready:
        return None
    entry = dataplane.repository.get(ready[0]["name"], ready[0]["version"])
    batched = entry.max_batch_size > 0
    inputs, columns = [], {}
    for spec in entry.inputs:
        shape = [1 if d is None or (batched and i == 0) else d for i, d in enumerate(spec.shape)]
        count = int(np.prod(shape)) if shape else 1
        datatype = datatype_of(spec.dtype)
        value = False if datatype == "BOOL" else "" if datatype == "BYTES" else 0
        inputs.append({"name": spec.name, "datatype": datatype, "shape": shape, "data": [value] * count})
        columns[spec.name] = np.full(shape, value).tolist()
    return {"model": entry.name, "version": entry.version, "infer": {"inputs": inputs},
            "predict": {"inputs": next(iter(columns.values())) if len(columns) == 1 else columns},
            "generate": {"input_ids": [0], "parameters": {"max_tokens": 4}}}


async def unless_disconnected(request: Request, inference):
    """Run the inference, but give it up when the client goes away: its queue slot is freed (the
    batcher skips a cancelled request) instead of computing an answer nobody will read."""
    work = asyncio.ensure_future(inference)

    async def disconnected():
        while (await request.receive())["type"] != "http.disconnect":
            pass
    watch = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not work.done():
            work.cancel()
        watch.cancel()
    if work.cancelled():
        raise ServeError("the client disconnected before the answer", status=499)
    return work.result()


# -- the app ---------------------------------------------------------------------------------------

class _Name(Convertor):
    """A path segment without ':' (TF Serving puts the verb after a colon)."""

    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class _Predict(_Name):
    """``NAME:predict`` (or ``VERSION:predict``), converted to the part before the colon."""

    regex = "[^/:]+:predict"

    def convert(self, value: str) -> str:
        return value[:-len(":predict")]

    def to_string(self, value: str) -> str:
        return f"{value}:predict"


register_url_convertor("tf_name", _Name())
register_url_convertor("tf_predict", _Predict())


def create_app(dataplane: DataPlane) -> Starlette:
    """The REST app over one data plane."""
    limit = dataplane.repository.options.max_body_bytes

    def version_of(request: Request) -> str:
        return request.path_params.get("version", "")

    # Not ready is 503 (what load balancers and Kubernetes expect); tritonclient only asks "200?".
    async def live(request):
        return Response(status_code=200 if dataplane.live() else 503)

    async def ready(request):
        return Response(status_code=200 if dataplane.ready() else 503)

    async def server_metadata(request):
        return json_response(dataplane.server_metadata())

    async def model_metadata(request):
        return json_response(dataplane.model_metadata(request.path_params["model"], version_of(request)))

    async def model_ready(request):
        ok = dataplane.model_ready(request.path_params["model"], version_of(request))
        return Response(status_code=200 if ok else 503)

    async def model_config(request):
        return json_response(config_dict(dataplane.model_config(request.path_params["model"], version_of(request))))

    async def infer(request: Request):
        dataplane.repository.get(request.path_params["model"], version_of(request))  # 404/503 before reading
        body = await read_body(request, limit)
        parsed = parse_infer(body, request.headers.get("inference-header-content-length"),
                             request.path_params["model"], version_of(request))
        response = await unless_disconnected(request, dataplane.infer(parsed))
        content, headers = infer_body(response, parsed)
        return Response(content, headers=headers)

    async def statistics(request):
        return json_response(dataplane.statistics(request.path_params.get("model", ""), version_of(request)))

    async def repository_index(request):
        body = await read_body(request, limit)
        options = parse_json(body) if body.strip() else {}
        if not isinstance(options, dict) or not isinstance(options.get("ready", False), bool):
            raise ServeError('the index request body is a JSON object, e.g. {"ready": true}, or empty')
        return json_response(dataplane.repository_index(options.get("ready", False)))

    async def control_body(request) -> None:
        body = await read_body(request, limit)
        options = parse_json(body) if body.strip() else {}
        if not isinstance(options, dict):
            raise ServeError("the load/unload request body is a JSON object or empty")
        if options.get("parameters"):
            raise ServeError("load/unload parameters (config overrides, uploaded files) are not supported; "
                             "change the repository on disk, then load")

    async def load(request):
        await control_body(request)
        await dataplane.load(request.path_params["model"])
        return Response(status_code=200)

    async def unload(request):
        await control_body(request)
        await dataplane.unload(request.path_params["model"])
        return Response(status_code=200)

    async def tf_status_route(request):
        return json_response(tf_status(dataplane, request.path_params["model"], version_of(request)))

    async def tf_predict(request):
        entry = dataplane.repository.get(request.path_params["model"], version_of(request))
        parsed, style = parse_predict(await read_body(request, limit), entry)
        return json_response(predict_body(await unless_disconnected(request, dataplane.infer(parsed)), style))

    async def tf_model_metadata(request):
        return json_response(tf_metadata(dataplane, request.path_params["model"], version_of(request)))

    async def generate_route(request: Request):
        dataplane.repository.get(request.path_params["model"], version_of(request))  # 404/503 before reading
        parsed = generation.parse_generate(parse_json(await read_body(request, limit)),
                                           request.path_params["model"], version_of(request))
        return json_response(await unless_disconnected(request, generation.generate(dataplane, parsed)))

    async def generate_stream_route(request: Request):
        dataplane.repository.get(request.path_params["model"], version_of(request))
        parsed = generation.parse_generate(parse_json(await read_body(request, limit)),
                                           request.path_params["model"], version_of(request))
        events = await generation.stream(dataplane, parsed)  # a bad request fails here, before any event

        async def body():
            async for event in events:
                yield b"data: " + orjson.dumps(event) + b"\n\n"
        return StreamingResponse(body(), media_type="text/event-stream")

    # Triton's system shared memory extension (serve/shared_memory.py); CUDA's is answered 501.
    async def shm_status(request):
        return json_response(dataplane.shared_memory.status(request.path_params.get("region", "")))

    async def shm_register(request):
        options = parse_json(await read_body(request, limit))
        if not isinstance(options, dict):
            raise ServeError('the register request body is {"key": "/NAME", "offset": 0, "byte_size": N}')
        dataplane.shared_memory.register(request.path_params["region"], options.get("key"), options.get("offset", 0),
                                         options.get("byte_size"))
        return Response(status_code=200)

    async def shm_unregister(request):
        dataplane.shared_memory.unregister(request.path_params.get("region", ""))
        return Response(status_code=200)

    async def cuda_shm(request):
        raise ServeError(shared_memory.CUDA_UNSUPPORTED, status=501)

    async def openapi(request):
        return json_response(openapi_document(dataplane.version, _examples(dataplane)))


    model_routes = []
    for prefix in ("/v2/models/{model}/versions/{version}", "/v2/models/{model}"):
        model_routes += [
            Route(prefix, model_metadata, methods=["GET"]),
            Route(prefix + "/ready", model_ready, methods=["GET"]),
            Route(prefix + "/config", model_config, methods=["GET"]),
            Route(prefix + "/infer", infer, methods=["POST"]),
            Route(prefix + "/generate", generate_route, methods=["POST"]),
            Route(prefix + "/generate_stream", generate_stream_route, methods=["POST"]),
            Route(prefix + "/stats", statistics, methods=["GET"]),
        ]
    routes = [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/models/stats", statistics, methods=["GET"]),
        *model_routes,
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        Route("/v2/repository/models/{model}/load", load, methods=["POST"]),
        Route("/v2/repository/models/{model}/unload", unload, methods=["POST"]),
        Route("/v1/models/{model}/versions/{version}/metadata", tf_model_metadata, methods=["GET"]),
        Route("/v1/models/{model}/metadata", tf_model_metadata, methods=["GET"]),
        Route("/v1/models/{model}/versions/{version:tf_predict}", tf_predict, methods=["POST"]),
        Route("/v1/models/{model}/versions/{version:tf_name}", tf_status_route, methods=["GET"]),
        Route("/v1/models/{model:tf_predict}", tf_predict, methods=["POST"]),
        Route("/v1/models/{model:tf_name}", tf_status_route, methods=["GET"]),
        Route("/v2/systemsharedmemory/status", shm_status, methods=["GET"]),
        Route("/v2/systemsharedmemory/region/{region}/status", shm_status, methods=["GET"]),
        Route("/v2/systemsharedmemory/region/{region}/register", shm_register, methods=["POST"]),
        Route("/v2/systemsharedmemory/unregister", shm_unregister, methods=["POST"]),
        Route("/v2/systemsharedmemory/region/{region}/unregister", shm_unregister, methods=["POST"]),
        Route("/v2/cudasharedmemory/status", cuda_shm, methods=["GET"]),
        Route("/v2/cudasharedmemory/region/{region}/{action}", cuda_shm, methods=["GET", "POST"]),
        Route("/v2/cudasharedmemory/unregister", cuda_shm, methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *metrics_app(dataplane).routes,
    ]

    async def serve_error(request, exc: ServeError):
        return error_response(str(exc), exc.status)

    async def http_error(request, exc: HTTPException):
        response = error_response(exc.detail or "error", exc.status_code)
        response.headers.update(exc.headers or {})   # 405 carries Allow
        return response

    async def internal_error(request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(f"internal error (a bug of modelport): {type(exc).__name__}: {first_line(exc)}", 500)

    app = Starlette(routes=routes, exception_handlers={
        ServeError: serve_error, HTTPException: http_error, Exception: internal_error})
    return access_logged(app) if logs.access_enabled() else app


def metrics_app(dataplane: DataPlane) -> Starlette:
    """/metrics alone: for --metrics-port, and its route is the main app's too."""
    async def page(request):
        return Response(metrics.render(dataplane.repository), media_type=metrics.CONTENT_TYPE)
    return Starlette(routes=[Route("/metrics", page, methods=["GET"])])


def access_logged(app):
    """ASGI wrapper writing one access line per request and echoing its X-Request-ID (taken from
    the request, or made up) in the response."""
    import uuid

    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        started, status = time.perf_counter(), 500
        request_id = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)
        try:
            await app(scope, receive, sending)
        finally:
            logs.access("http", scope["method"], scope["path"], status, started, request_id,
                        logs.model_in_path(scope["path"]))
    return wrapped
