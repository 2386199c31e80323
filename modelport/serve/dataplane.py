"""The one data plane behind every protocol: requests in protocol-free types, checked, batched, run.

REST (OIP v2 and TF Serving) and gRPC each translate their wire form into :class:`InferRequest`
and the answer back from :class:`InferResponse`; everything between — which model and version,
whether each input's name, datatype, shape and byte size fit the model, the batch limit, the
timeout, statistics — happens here once. Every refusal is a :class:`~modelport.errors.ServeError`
whose ``status`` is an HTTP status; ``rest.py`` sends it as is and ``grpc_service.py`` maps it to
a gRPC code in one table.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelportError, ServeError, first_line, quote_list
from . import cache, classification, ensemble, images, shared_memory
from .cache import ResponseCache
from .codec import Raw, datatype_of, decode, element_count, encode_raw, numpy_dtype
from .repository import ModelVersion, Repository, version_key
from .shared_memory import SystemSharedMemory

SERVER_NAME = "modelport"
# The OIP/Triton extensions this server implements, as server metadata lists them.
EXTENSIONS = ["binary_tensor_data", "classification", "model_configuration", "model_repository", "statistics",
              "parameters", "generate", "system_shared_memory"]


@dataclass
class InferInput:
    name: str
    datatype: str
    shape: list[int]
    values: Any                 # codec.Raw or a (nested) sequence of values
    parameters: dict = field(default_factory=dict)


@dataclass
class RequestedOutput:
    name: str
    parameters: dict = field(default_factory=dict)


@dataclass
class InferRequest:
    model: str
    version: str = ""
    id: str = ""
    inputs: list[InferInput] = field(default_factory=list)
    outputs: list[RequestedOutput] = field(default_factory=list)   # empty: every output
    parameters: dict = field(default_factory=dict)


@dataclass
class OutputTensor:
    name: str
    datatype: str
    array: np.ndarray
    parameters: dict = field(default_factory=dict)   # the request's parameters for this output
    in_shared_memory: bool = False   # written to the client's region: the response carries no data


@dataclass
class InferResponse:
    model: str
    version: str
    id: str
    outputs: list[OutputTensor]


class DataPlane:
    """Answers every protocol's questions about the repository and runs inferences."""

    def __init__(self, repository: Repository, *, version: str = ""):
        self.repository = repository
        self.version = version
        capacity = repository.options.cache_bytes
        self.cache = ResponseCache(capacity) if capacity else None
        self.shared_memory = SystemSharedMemory(allowed=repository.options.allow_client_shm)
        self.draining = False
        self.active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- health and metadata ---------------------------------------------------------------------
    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return not self.draining and self.repository.all_ready()

    def server_metadata(self) -> dict:
        return {"name": SERVER_NAME, "version": self.version, "extensions": EXTENSIONS}

    def model_ready(self, name: str, version: str = "") -> bool:
        return not self.draining and self.repository.get(name, version, ready=False).ready

    def model_metadata(self, name: str, version: str = "") -> dict:
        entry = self.repository.get(name, version)
        versions = sorted((v for v, e in self.repository.models[name].items() if e.ready), key=version_key)
        return {"name": entry.name, "versions": versions, "platform": entry.config.platform,
                "inputs": [_tensor_metadata(spec, entry) for spec in entry.inputs],
                "outputs": [_tensor_metadata(spec, entry) for spec in entry.outputs]}

    def model_config(self, name: str, version: str = ""):
        return self.repository.get(name, version).config

    def statistics(self, name: str = "", version: str = "") -> dict:
        if name:
            entries = [self.repository.get(name, version, ready=False)]
        else:
            entries = [e for versions in self.repository.models.values() for e in versions.values() if e.ready]
        return {"model_stats": [_stats(entry) for entry in entries]}

    def repository_index(self, ready_only: bool = False) -> list[dict]:
        return [row for row in self.repository.index() if not ready_only or row["state"] == "READY"]

    async def load(self, name: str) -> None:
        self._model_control()
        await self.repository.load(name)
        self._forget_answers(name)
        entry = self.repository.get(name, ready=False)
        if not entry.ready:
            raise ServeError(f"model {name!r} failed to load: {entry.reason}", status=400)

    async def unload(self, name: str) -> None:
        self._model_control()
        await self.repository.unload(name)
        self._forget_answers(name)

    def _forget_answers(self, name: str) -> None:
        if self.cache is not None:  # the model's file may have changed under the same version
            self.cache.forget(name)

    def _model_control(self) -> None:
        if not self.repository.options.model_control:
            raise ServeError("model control is disabled on this server (--no-model-control)", status=403)

    # -- inference -------------------------------------------------------------------------------
    async def infer(self, request: InferRequest) -> InferResponse:
        if self.draining:
            raise ServeError("the server is shutting down and takes no new requests; retry on another replica",
                             status=503)
        entry = self.repository.get(request.model, request.version)
        started = time.perf_counter_ns()
        try:  # a refused request counts as a failure of the model it was for, as in Triton's metrics
            inputs = [self._read_shared_memory(tensor) for tensor in request.inputs]
            if any(tensor.datatype == "BYTES" and tensor.name in entry.images for tensor in inputs):
                # decoding is CPU work: off the event loop, as the model's run is
                inputs = await asyncio.get_running_loop().run_in_executor(None, _decode_images, entry, inputs)
            feeds = check_inputs(entry, inputs)
            wanted = check_outputs(entry, request.outputs)
            placements = {name: self.shared_memory.placement(name, params) for name, params in wanted}
            timeout = _timeout(request, self.repository.options.request_timeout_s)
        except ServeError:
            _failed(entry, started)
            raise
        batcher = entry.batcher
        if batcher is None and not entry.steps:  # unloaded between the lookup and now
            raise ServeError(f"model {entry.name!r} version {entry.version} is not ready: {entry.reason}", status=503)
        key = None
        if self.cache is not None and entry.config.response_cache.enable:
            looked_up = time.perf_counter_ns()
            key = cache.request_key(entry.name, entry.version, feeds)
            outputs = self.cache.get(key)
            if outputs is not None:
                entry.stats.answered_from_cache(_rows(entry, feeds), time.perf_counter_ns() - looked_up)
                return self._respond(entry, request, wanted, placements, outputs, started)
        self.active += 1
        self._idle.clear()
        try:
            work = self._run_ensemble(entry, feeds) if entry.steps else batcher.submit(feeds)
            outputs = await asyncio.wait_for(work, timeout)
        except asyncio.TimeoutError:
            _failed(entry, started)
            raise ServeError(f"model {entry.name!r} did not answer within {timeout:g} s (the request "
                             "timeout); the server is overloaded or the model is slow", status=504) from None
        except ServeError:
            _failed(entry, started)
            raise
        except ModelportError as exc:  # the runtime refused or failed: this request's problem only
            _failed(entry, started)
            raise ServeError(f"model {entry.name!r} failed to run this request: {exc}", status=500) from exc
        except Exception as exc:
            _failed(entry, started)
            raise ServeError(f"model {entry.name!r} failed to run this request: "
                             f"{type(exc).__name__}: {first_line(exc)}", status=500) from exc
        finally:
            self.active -= 1
            if not self.active:
                self._idle.set()
        if key is not None:
            stored = time.perf_counter_ns()
            self.cache.put(key, outputs)
            entry.stats.cache_miss[0] += 1
            entry.stats.cache_miss[1] += time.perf_counter_ns() - stored
        return self._respond(entry, request, wanted, placements, outputs, started)

    async def _run_ensemble(self, entry: ModelVersion, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """An ensemble's steps (serve/ensemble.py), each through its own model's batcher."""
        started = time.perf_counter_ns()
        outputs = await ensemble.run(entry.steps, feeds, [spec.name for spec in entry.outputs], self._run_step)
        entry.stats.executed(_rows(entry, feeds), 1, 0, time.perf_counter_ns() - started)
        return outputs

    async def _run_step(self, step, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            model = self.repository.get(step.model, step.version)
        except ServeError as exc:
            raise ServeError(f"ensemble step {step.model!r}: {exc}", status=exc.status) from None
        started = time.perf_counter_ns()
        try:
            if model.batcher is None:
                raise ServeError(f"model {model.name!r} is not ready: {model.reason}", status=503)
            feeds = check_inputs(model, [InferInput(name, datatype_of(value.dtype), list(value.shape),
                                                    Raw(encode_raw(value))) for name, value in tensors.items()])
            outputs = await model.batcher.submit(feeds)
        except ServeError as exc:
            _failed(model, started)
            raise ServeError(f"ensemble step {step.model!r}: {exc}", status=exc.status) from None
        except Exception:
            _failed(model, started)
            raise
        model.stats.success[0] += 1
        model.stats.success[1] += time.perf_counter_ns() - started
        return outputs

    def _read_shared_memory(self, tensor: InferInput) -> InferInput:
        """An input whose parameters name a shared memory region, with its bytes read from there."""
        placement = self.shared_memory.placement(tensor.name, tensor.parameters)
        if placement is None:
            return tensor
        if tensor.values is not None and not (hasattr(tensor.values, "__len__") and len(tensor.values) == 0):
            raise ServeError(f"input {tensor.name!r} names a shared memory region and also carries data; send one")
        if tensor.datatype != "BYTES":
            try:
                expected = element_count(tensor.shape) * numpy_dtype(tensor.datatype).itemsize
            except (ServeError, TypeError, ValueError):
                expected = None
            if expected is not None and expected != placement.byte_size:
                raise ServeError(f"input {tensor.name!r}: {shared_memory.BYTE_SIZE} is {placement.byte_size}, but a "
                                 f"{tensor.datatype} tensor of shape {list(tensor.shape)} takes {expected} bytes")
        return InferInput(tensor.name, tensor.datatype, tensor.shape, Raw(placement.read()), tensor.parameters)

    def _respond(self, entry: ModelVersion, request: InferRequest, wanted, placements, outputs,
                 started: int) -> InferResponse:
        try:
            tensors = self._output_tensors(entry, wanted, placements, outputs)
        except ServeError:   # an output that does not fit its shared memory region
            _failed(entry, started)
            raise
        success = entry.stats.success
        success[0] += 1
        success[1] += time.perf_counter_ns() - started
        return InferResponse(entry.name, entry.version, request.id, tensors)

    def _output_tensors(self, entry: ModelVersion, wanted, placements, outputs) -> list[OutputTensor]:
        tensors = []
        for name, params in wanted:
            array = outputs[name]
            count = params.get(classification.PARAMETER)
            if count is not None:  # the top classes as "score:index:label" strings
                array = classification.classify(array, count, entry.labels.get(name), entry.max_batch_size > 0)
            placement = placements.get(name)
            if placement is not None:
                blob = encode_raw(array)
                if len(blob) > placement.byte_size:
                    raise ServeError(f"output {name!r} takes {len(blob)} bytes, more than its "
                                     f"{shared_memory.BYTE_SIZE} {placement.byte_size}; give its region room for "
                                     f"{list(array.shape)} {datatype_of(array.dtype)}")
                placement.write(blob)
                params = {**params, shared_memory.BYTE_SIZE: len(blob)}
            tensors.append(OutputTensor(name, datatype_of(array.dtype), array, params, placement is not None))
        return tensors

    @contextlib.asynccontextmanager
    async def running(self, entry: ModelVersion):
        """Work on ``entry`` outside the batcher (a generation loop): refused while draining, counted
        as active (drain waits for it) and in the model's statistics."""
        if self.draining:
            raise ServeError("the server is shutting down and takes no new requests; retry on another replica",
                             status=503)
        self.active += 1
        self._idle.clear()
        started = time.perf_counter_ns()
        try:
            yield
        except BaseException:
            _failed(entry, started)
            raise
        else:
            entry.stats.success[0] += 1
            entry.stats.success[1] += time.perf_counter_ns() - started
        finally:
            self.active -= 1
            if not self.active:
                self._idle.set()

    async def drain(self) -> None:
        """Refuse new inferences and wait until those accepted have their answers."""
        self.draining = True
        await self._idle.wait()


def _rows(entry: ModelVersion, feeds: dict[str, np.ndarray]) -> int:
    """The inferences one request counts for: its batch rows for a batched model, else one."""
    return len(next(iter(feeds.values()))) if entry.max_batch_size > 0 and feeds else 1


def _decode_images(entry: ModelVersion, tensors: list[InferInput]) -> list[InferInput]:
    """Encoded images sent to an image input (serve/images.py) as the float tensor it takes."""
    result = []
    for tensor in tensors:
        if tensor.datatype == "BYTES" and tensor.name in entry.images:
            try:
                shape = tuple(int(d) for d in tensor.shape)
            except (TypeError, ValueError):
                raise ServeError(f"input {tensor.name!r}: shape must be a list of integers") from None
            batch = images.decoded(entry.images, tensor.name, decode(tensor.name, "BYTES", shape, tensor.values))
            tensor = InferInput(tensor.name, datatype_of(batch.dtype), list(batch.shape), Raw(batch.tobytes()),
                                tensor.parameters)
        result.append(tensor)
    return result


def check_inputs(entry: ModelVersion, tensors: list[InferInput]) -> dict[str, np.ndarray]:
    """The request's inputs as arrays, in the model's input order; 400 naming the first input
    that does not fit."""
    specs = {spec.name: spec for spec in entry.inputs}
    batched = entry.max_batch_size > 0
    feeds: dict[str, np.ndarray] = {}
    for tensor in tensors:
        spec = specs.get(tensor.name)
        if spec is None:
            raise ServeError(f"model {entry.name!r} has no input {tensor.name!r}; its inputs are "
                             f"{quote_list(list(specs))}")
        if tensor.name in feeds:
            raise ServeError(f"input {tensor.name!r} is given twice")
        expected = datatype_of(spec.dtype)
        if tensor.datatype != expected:
            hint = ("; to send it encoded images, declare how they are prepared (config.pbtxt parameters "
                    f"{images.MEAN} and {images.STD})" if tensor.datatype == "BYTES" and spec.shape is not None
                    and len(spec.shape) == 4 and spec.dtype.kind == "f" else "")
            raise ServeError(f"input {tensor.name!r} of model {entry.name!r} is {expected}; the request "
                             f"sends {tensor.datatype}{hint}")
        shape = _check_shape(entry, spec, tensor.shape, batched)
        feeds[tensor.name] = decode(tensor.name, tensor.datatype, shape, tensor.values)
    missing = [name for name in specs if name not in feeds]
    if missing:
        raise ServeError(f"the request lacks input {quote_list(missing)} of model {entry.name!r}")
    if batched:
        rows = {feed.shape[0] for feed in feeds.values()}
        if len(rows) > 1:
            raise ServeError("the inputs disagree on the batch size (dim 0): "
                             + ", ".join(f"{n} {f.shape[0]}" for n, f in feeds.items()))
    return {name: feeds[name] for name in specs}


def _check_shape(entry: ModelVersion, spec, shape, batched: bool) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ServeError(f"input {spec.name!r}: shape must be a list of integers, got {shape!r}") from None
    model_shape = "[" + ", ".join("-1" if d is None else str(d) for d in spec.shape) + "]"
    if len(shape) != len(spec.shape) or any(d < 0 for d in shape) \
            or any(want is not None and want != got for want, got in zip(spec.shape, shape)):
        raise ServeError(f"input {spec.name!r} has shape {list(shape)} in the request; model "
                         f"{entry.name!r} takes {model_shape} (-1: any size)")
    if batched:
        if shape[0] < 1:
            raise ServeError(f"input {spec.name!r}: the batch dimension (dim 0) must be at least 1")
        if shape[0] > entry.max_batch_size:
            raise ServeError(f"input {spec.name!r}: a batch of {shape[0]} exceeds the max_batch_size "
                             f"{entry.max_batch_size} of model {entry.name!r}; split the request")
    return shape


def check_outputs(entry: ModelVersion, requested: list[RequestedOutput]) -> list[tuple[str, dict]]:
    specs = {spec.name: spec for spec in entry.outputs}
    if not requested:
        return [(name, {}) for name in specs]
    chosen, seen = [], set()
    for output in requested:
        if output.name not in specs:
            raise ServeError(f"model {entry.name!r} has no output {output.name!r}; its outputs are "
                             f"{quote_list(list(specs))}")
        if output.name in seen:
            raise ServeError(f"output {output.name!r} is requested twice")
        seen.add(output.name)
        parameters = dict(output.parameters)
        count = classification.requested_count(output.name, parameters, specs[output.name], entry.max_batch_size > 0)
        if count is not None:
            parameters[classification.PARAMETER] = count
        chosen.append((output.name, parameters))
    return chosen


def _timeout(request: InferRequest, default: float) -> float:
    """Triton's ``timeout`` request parameter is in microseconds."""
    value = request.parameters.get("timeout")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ServeError(f"parameter 'timeout' must be a positive number of microseconds, got {value!r}")
    return min(value / 1e6, default)


def _failed(entry: ModelVersion, started: int) -> None:
    entry.stats.fail[0] += 1
    entry.stats.fail[1] += time.perf_counter_ns() - started


def _tensor_metadata(spec, entry: ModelVersion) -> dict:
    shape = [-1 if d is None else d for d in spec.shape]
    if entry.max_batch_size > 0:
        shape[0] = -1
    return {"name": spec.name, "datatype": datatype_of(spec.dtype), "shape": shape}


def _duration(pair) -> dict:
    return {"count": pair[0], "ns": pair[1]}


def _stats(entry: ModelVersion) -> dict:
    stats = entry.stats
    return {
        "name": entry.name, "version": entry.version, "last_inference": stats.last_inference_ms,
        "inference_count": stats.inference_count, "execution_count": stats.execution_count,
        "inference_stats": {key: _duration(getattr(stats, key)) for key in
                            ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output",
                             "cache_hit", "cache_miss")},
        "batch_stats": [{"batch_size": size, "compute_input": _duration([count, 0]),
                         "compute_infer": _duration([count, ns]), "compute_output": _duration([count, 0])}
                        for size, (count, ns) in sorted(stats.batches.items())],
    }
