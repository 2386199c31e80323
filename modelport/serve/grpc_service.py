"""gRPC: the Open Inference Protocol v2 (``inference.GRPCInferenceService``) on ``grpc.aio``.

The messages are modelport's own ``proto/grpc_service.proto`` with Triton's field numbers, so
``tritonclient.grpc`` works unchanged. Each RPC translates its message to the data plane's types
and back; a :class:`~modelport.errors.ServeError`'s HTTP status becomes a gRPC code in
:data:`GRPC_CODES`, the one place that maps them. ``grpc.health.v1`` answers for the server
(service ``""``) and for each model by name.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time

import grpc
from google.protobuf import json_format

from ..errors import ServeError, UsageError, first_line
from . import logs, shared_memory
from .codec import Raw, encode_raw
from .dataplane import DataPlane, InferInput, InferRequest, RequestedOutput
from .proto import grpc_service_pb2 as pb
from .proto import grpc_service_pb2_grpc as pb_grpc

log = logging.getLogger("modelport.serve")

GRPC_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 403: grpc.StatusCode.PERMISSION_DENIED,
              404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
              415: grpc.StatusCode.INVALID_ARGUMENT, 500: grpc.StatusCode.INTERNAL,
              501: grpc.StatusCode.UNIMPLEMENTED, 503: grpc.StatusCode.UNAVAILABLE,
              504: grpc.StatusCode.DEADLINE_EXCEEDED}

# The typed-contents field that carries each datatype; FP16 and BF16 travel only as raw bytes.
_CONTENTS_FIELD = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
                   "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
                   "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
                   "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def _answers(method):
    """Turn ServeError into its gRPC status, and anything else into INTERNAL (a modelport bug);
    write the access line when access logging is on."""
    @functools.wraps(method)
    async def wrapper(self, request, context):
        started, status = time.perf_counter(), "OK"
        try:
            return await method(self, request, context)
        except ServeError as exc:
            code = GRPC_CODES.get(exc.status, grpc.StatusCode.UNKNOWN)
            status = code.name
            await context.abort(code, str(exc))
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            status = "INTERNAL"
            log.exception("internal error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL,
                                f"internal error (a bug of modelport): {type(exc).__name__}: {first_line(exc)}")
        finally:
            if logs.access_enabled():
                request_id = getattr(request, "id", "") or dict(context.invocation_metadata() or ()).get("x-request-id", "")
                logs.access("grpc", "POST", f"inference.GRPCInferenceService/{method.__name__}", status, started,
                            request_id, getattr(request, "model_name", "") or getattr(request, "name", ""))
    return wrapper


def _parameter_value(parameter):
    choice = parameter.WhichOneof("parameter_choice")
    return getattr(parameter, choice) if choice else None


def _parameters(mapping) -> dict:
    return {key: _parameter_value(value) for key, value in mapping.items()}


def to_request(message: pb.ModelInferRequest) -> InferRequest:
    raw = message.raw_input_contents
    # Inputs in shared memory carry no contents: the raw contents belong, in order, to the others.
    in_memory = [shared_memory.REGION in tensor.parameters for tensor in message.inputs]
    if raw and len(raw) != in_memory.count(False):
        raise ServeError(f"{len(raw)} raw_input_contents for {in_memory.count(False)} inputs not in shared memory; "
                         "give one per such input (in input order) or none")
    inputs, carried = [], iter(raw)
    for index, tensor in enumerate(message.inputs):
        if in_memory[index]:
            values = None
        elif raw:
            if tensor.HasField("contents"):
                raise ServeError(f"input {tensor.name!r} has both contents and raw_input_contents")
            values = Raw(next(carried))
        else:
            field = _CONTENTS_FIELD.get(tensor.datatype)
            if field is None:
                if tensor.datatype in ("FP16", "BF16"):
                    raise ServeError(f"input {tensor.name!r}: {tensor.datatype} travels in raw_input_contents only")
                raise ServeError(f"input {tensor.name!r}: unknown datatype {tensor.datatype!r}")
            values = getattr(tensor.contents, field)
        inputs.append(InferInput(tensor.name, tensor.datatype, list(tensor.shape), values,
                                 _parameters(tensor.parameters)))
    outputs = [RequestedOutput(output.name, _parameters(output.parameters)) for output in message.outputs]
    return InferRequest(message.model_name, message.model_version, message.id, inputs, outputs,
                        _parameters(message.parameters))


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, dataplane: DataPlane):
        self.dataplane = dataplane

    async def _infer(self, message: pb.ModelInferRequest) -> pb.ModelInferResponse:
        response = await self.dataplane.infer(to_request(message))
        answer = pb.ModelInferResponse(model_name=response.model, model_version=response.version, id=response.id)
        for tensor in response.outputs:
            output = answer.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.array.shape)
            if tensor.in_shared_memory:  # the bytes are in the client's region: say where, carry none
                for key in shared_memory.PARAMETERS:
                    if key in tensor.parameters:
                        value = tensor.parameters[key]
                        if isinstance(value, str):
                            output.parameters[key].string_param = value
                        else:
                            output.parameters[key].int64_param = int(value)
            else:
                answer.raw_output_contents.append(encode_raw(tensor.array))
        return answer

    @_answers
    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=self.dataplane.live())

    @_answers
    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.dataplane.ready())

    @_answers
    async def ModelReady(self, request, context):
        return pb.ModelReadyResponse(ready=self.dataplane.model_ready(request.name, request.version))

    @_answers
    async def ServerMetadata(self, request, context):
        return json_format.ParseDict(self.dataplane.server_metadata(), pb.ServerMetadataResponse())

    @_answers
    async def ModelMetadata(self, request, context):
        return json_format.ParseDict(self.dataplane.model_metadata(request.name, request.version),
                                     pb.ModelMetadataResponse())

    @_answers
    async def ModelConfig(self, request, context):
        return pb.ModelConfigResponse(config=self.dataplane.model_config(request.name, request.version))

    @_answers
    async def ModelStatistics(self, request, context):
        return json_format.ParseDict(self.dataplane.statistics(request.name, request.version),
                                     pb.ModelStatisticsResponse(), ignore_unknown_fields=True)

    @_answers
    async def RepositoryIndex(self, request, context):
        return json_format.ParseDict({"models": self.dataplane.repository_index(request.ready)},
                                     pb.RepositoryIndexResponse())

    @_answers
    async def RepositoryModelLoad(self, request, context):
        await self.dataplane.load(request.model_name)
        return pb.RepositoryModelLoadResponse()

    @_answers
    async def RepositoryModelUnload(self, request, context):
        await self.dataplane.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()

    @_answers
    async def SystemSharedMemoryStatus(self, request, context):
        answer = pb.SystemSharedMemoryStatusResponse()
        for region in self.dataplane.shared_memory.status(request.name):
            answer.regions[region["name"]].CopyFrom(pb.SystemSharedMemoryStatusResponse.RegionStatus(**region))
        return answer

    @_answers
    async def SystemSharedMemoryRegister(self, request, context):
        self.dataplane.shared_memory.register(request.name, request.key, request.offset, request.byte_size)
        return pb.SystemSharedMemoryRegisterResponse()

    @_answers
    async def SystemSharedMemoryUnregister(self, request, context):
        self.dataplane.shared_memory.unregister(request.name)
        return pb.SystemSharedMemoryUnregisterResponse()

    @_answers
    async def CudaSharedMemoryStatus(self, request, context):
        raise ServeError(shared_memory.CUDA_UNSUPPORTED, status=501)

    CudaSharedMemoryRegister = CudaSharedMemoryStatus
    CudaSharedMemoryUnregister = CudaSharedMemoryStatus

    @_answers
    async def ModelInfer(self, request, context):
        return await self._infer(request)

    async def ModelStreamInfer(self, request_iterator, context):
        """Requests of a stream run concurrently (so they batch); each answer, or its error, is
        sent as soon as it is ready, carrying the request's id."""
        answers: asyncio.Queue = asyncio.Queue()

        async def one(message):
            try:
                answers.put_nowait(pb.ModelStreamInferResponse(infer_response=await self._infer(message)))
            except ServeError as exc:
                answers.put_nowait(pb.ModelStreamInferResponse(
                    error_message=str(exc), infer_response=pb.ModelInferResponse(
                        model_name=message.model_name, model_version=message.model_version, id=message.id)))
            except Exception as exc:
                log.exception("internal error in ModelStreamInfer")
                answers.put_nowait(pb.ModelStreamInferResponse(
                    error_message=f"internal error (a bug of modelport): {type(exc).__name__}: {first_line(exc)}",
                    infer_response=pb.ModelInferResponse(id=message.id)))

        async def read():
            tasks = []
            async for message in request_iterator:
                tasks.append(asyncio.create_task(one(message)))
            await asyncio.gather(*tasks)
            answers.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (answer := await answers.get()) is not None:
                yield answer
        finally:
            reader.cancel()


def create_server(dataplane: DataPlane, address: str):
    """A grpc.aio server with the inference and health services, bound to ``address``; returns
    (server, health servicer, the bound port)."""
    from grpc_health.v1 import health, health_pb2_grpc
    limit = dataplane.repository.options.max_body_bytes
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit),
                                      ("grpc.max_send_message_length", -1),
                                      ("grpc.so_reuseport", 0)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(dataplane), server)
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise UsageError(f"cannot listen on {address} for gRPC (is the port taken?)",
                         hint="choose another port with --grpc-port (0 picks a free one)")
    return server, checker, port


async def update_health(checker, dataplane: DataPlane) -> None:
    """grpc.health.v1's answer for the server ("") and for each model, from the data plane."""
    from grpc_health.v1 import health_pb2
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    await checker.set("", serving if dataplane.ready() else not_serving)
    for name in dataplane.repository.models:
        try:
            ready = dataplane.model_ready(name)
        except ServeError:
            ready = False
        await checker.set(name, serving if ready else not_serving)
