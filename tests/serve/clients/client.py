"""Real clients against a running `modelport serve`, run in the clients' venv (tritonclient, kserve,
requests). Each command prints one JSON object on stdout; tensors go to an .npz file.

    client.py infer HTTP GRPC MODEL INPUTS.npz OUT.npz      tritonclient and TF Serving REST, outputs as MODE/NAME
    client.py infer-kserve HTTP GRPC MODEL INPUTS.npz OUT.npz  KServe's v2 REST and gRPC clients
    client.py concurrent HTTP GRPC MODEL INPUTS.npz OUT.npz  one thread per row, half HTTP, half gRPC
    client.py errors HTTP GRPC                               refusals seen by tritonclient (status, message)
    client.py meta HTTP GRPC MODEL                           metadata, config, statistics, repository, health
    client.py classify HTTP GRPC MODEL OUTPUT K INPUTS.npz   the top K classes (class_count=K), HTTP and gRPC
"""
from __future__ import annotations

import asyncio
import json
import sys
import threading

import numpy as np
import requests
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

if sys.argv[1:2] != ["infer-kserve"]:  # see kserve_clients
    import tritonclient.grpc as grpcclient
    import tritonclient.grpc.aio as grpcaio
    import tritonclient.http as httpclient
    import tritonclient.http.aio as httpaio
    from tritonclient.grpc import service_pb2, service_pb2_grpc


def _http_inputs(feeds, binary=True, module=None):
    module, inputs = module or httpclient, []
    for name, value in feeds.items():
        tensor = module.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
        tensor.set_data_from_numpy(value, binary_data=binary)
        inputs.append(tensor)
    return inputs


def _grpc_inputs(feeds, module=None):
    module, inputs = module or grpcclient, []
    for name, value in feeds.items():
        tensor = module.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    return inputs


def _collect(result, names):
    return {name: result.as_numpy(name) for name in names}


def infer_all(http, grpc, model, feeds, names) -> dict[str, dict[str, np.ndarray]]:
    results = {}
    client = httpclient.InferenceServerClient(http)
    results["http-binary"] = _collect(client.infer(model, _http_inputs(feeds)), names)
    json_outputs = [httpclient.InferRequestedOutput(name, binary_data=False) for name in names]
    results["http-json"] = _collect(client.infer(model, _http_inputs(feeds, binary=False), outputs=json_outputs), names)
    results["http-gzip"] = _collect(client.infer(model, _http_inputs(feeds), request_compression_algorithm="gzip"), names)
    results["http-version"] = _collect(client.infer(model, _http_inputs(feeds), model_version="1"), names)

    async def http_aio():
        async with httpaio.InferenceServerClient(http) as aio:
            return _collect(await aio.infer(model, _http_inputs(feeds, module=httpaio)), names)
    results["http-aio"] = asyncio.run(http_aio())

    client = grpcclient.InferenceServerClient(grpc)
    results["grpc"] = _collect(client.infer(model, _grpc_inputs(feeds)), names)

    async def grpc_aio():
        async with grpcaio.InferenceServerClient(grpc) as aio:
            return _collect(await aio.infer(model, _grpc_inputs(feeds, module=grpcaio)), names)
    results["grpc-aio"] = asyncio.run(grpc_aio())

    answers, done = [], threading.Event()

    def callback(result, error):
        answers.append((result, error))
        if len(answers) == 2:
            done.set()
    client.start_stream(callback=callback)
    for request_id in ("a", "b"):
        client.async_stream_infer(model, _grpc_inputs(feeds), request_id=request_id)
    assert done.wait(60), "no stream answers"
    client.stop_stream()
    for result, error in answers:
        assert error is None, error
        results[f"grpc-stream-{result.get_response().id}"] = _collect(result, names)

    results["grpc-contents"] = grpc_typed_contents(grpc, model, feeds, names)
    results.update(tf_serving(http, model, feeds, names))
    return results


_CONTENTS = {"float32": "fp32_contents", "float64": "fp64_contents", "int64": "int64_contents",
             "int32": "int_contents", "bool": "bool_contents", "uint8": "uint_contents"}


def grpc_typed_contents(grpc, model, feeds, names):
    """ModelInfer with typed InferTensorContents (not raw bytes), through Triton's generated stub."""
    import grpc as grpclib
    with grpclib.insecure_channel(grpc) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ModelInferRequest(model_name=model)
        for name, value in feeds.items():
            tensor = request.inputs.add(name=name, datatype=np_to_triton_dtype(value.dtype), shape=value.shape)
            getattr(tensor.contents, _CONTENTS[value.dtype.name]).extend(value.ravel().tolist())
        response = stub.ModelInfer(request)
    result = grpcclient.InferResult(response)
    return _collect(result, names)


def kserve_clients(http, grpc, model, feeds, names):
    """KServe's own v2 clients and InferRequest/InferInput types. A process of its own: kserve's
    generated messages and tritonclient's share the proto package `inference` and cannot both load."""
    from kserve import InferInput, InferRequest
    from kserve.inference_client import InferenceGRPCClient, InferenceRESTClient, RESTConfig

    def request():
        inputs = []
        for name, value in feeds.items():
            tensor = InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
            tensor.set_data_from_numpy(value, binary_data=False)
            inputs.append(tensor)
        return InferRequest(model_name=model, infer_inputs=inputs, request_id="kserve")

    async def both():
        rest = InferenceRESTClient(RESTConfig(protocol="v2"))
        try:
            rest_response = await rest.infer(f"http://{http}", request(), model_name=model)
        finally:
            await rest.close()
        grpc_client = InferenceGRPCClient(grpc)
        try:
            grpc_response = await grpc_client.infer(request())
        finally:
            await grpc_client.close()
        return rest_response, grpc_response
    rest_response, grpc_response = asyncio.run(both())
    out = {}
    for mode, response in (("kserve-rest", rest_response), ("kserve-grpc", grpc_response)):
        arrays = {o.name: o.as_numpy() for o in response.outputs}
        out[mode] = {name: arrays[name] for name in names}
    return out


def tf_serving(http, model, feeds, names):
    """TF Serving REST :predict in row (instances) and columnar (inputs) form, with requests."""
    url = f"http://{http}/v1/models/{model}:predict"
    rows = len(next(iter(feeds.values())))
    if len(feeds) == 1:
        instances = next(iter(feeds.values())).tolist()
        columnar = instances
    else:
        instances = [{name: value[i].tolist() for name, value in feeds.items()} for i in range(rows)]
        columnar = {name: value.tolist() for name, value in feeds.items()}
    out = {}
    for mode, body in (("tfserving-row", {"instances": instances}),
                       ("tfserving-columnar", {"signature_name": "serving_default", "inputs": columnar})):
        response = requests.post(url, json=body, timeout=60)
        response.raise_for_status()
        data = response.json()
        if mode == "tfserving-row":
            predictions = data["predictions"]
            arrays = ({names[0]: np.array(predictions)} if len(names) == 1 else
                      {name: np.array([row[name] for row in predictions]) for name in names})
        else:
            outputs = data["outputs"]
            arrays = {names[0]: np.array(outputs)} if len(names) == 1 else {n: np.array(outputs[n]) for n in names}
        out[mode] = arrays
    return out


def concurrent(http, grpc, model, feeds, names):
    """One thread per row of the inputs, each sending only its row, alternately over HTTP and gRPC."""
    rows = len(next(iter(feeds.values())))
    results, errors = {}, []
    start = threading.Barrier(rows)

    def worker(i):
        mine = {name: value[i:i + 1] for name, value in feeds.items()}
        try:
            start.wait()
            if i % 2:
                result = httpclient.InferenceServerClient(http).infer(model, _http_inputs(mine))
            else:
                result = grpcclient.InferenceServerClient(grpc).infer(model, _grpc_inputs(mine))
            results[i] = _collect(result, names)
        except Exception as exc:  # reported, not raised, so every thread's fate is known
            errors.append(f"{i}: {exc}")
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(rows)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return {f"row{i}": results[i] for i in range(rows)}


def errors(http, grpc):
    """What tritonclient reports for requests the server must refuse."""
    x = np.ones((1, 3, 32, 32), np.float32)
    cases = {
        "unknown-model": ("nope", {"image": x}),
        "wrong-dtype": ("cnn", {"image": x.astype(np.float64)}),
        "wrong-shape": ("cnn", {"image": np.ones((1, 3, 31, 32), np.float32)}),
        "batch-too-large": ("cnn", {"image": np.ones((9, 3, 32, 32), np.float32)}),
        "unknown-input": ("cnn", {"picture": x}),
        "missing-input": ("multi", {"features": np.ones((1, 4), np.float32)}),
        "unknown-version": ("cnn@7", {"image": x}),
    }
    seen = {}
    http_client = httpclient.InferenceServerClient(http)
    grpc_client = grpcclient.InferenceServerClient(grpc)
    for case, (model, feeds) in cases.items():
        name, _, version = model.partition("@")
        for protocol, call in (("http", lambda: http_client.infer(name, _http_inputs(feeds), model_version=version)),
                               ("grpc", lambda: grpc_client.infer(name, _grpc_inputs(feeds), model_version=version))):
            try:
                call()
                seen[f"{case}/{protocol}"] = {"status": "OK"}
            except InferenceServerException as exc:
                seen[f"{case}/{protocol}"] = {"status": exc.status(), "message": exc.message()}
    return seen


def meta(http, grpc, model):
    http_client = httpclient.InferenceServerClient(http)
    grpc_client = grpcclient.InferenceServerClient(grpc)
    return {
        "http": {"live": http_client.is_server_live(), "ready": http_client.is_server_ready(),
                 "model_ready": http_client.is_model_ready(model), "server": http_client.get_server_metadata(),
                 "model": http_client.get_model_metadata(model), "config": http_client.get_model_config(model),
                 "stats": http_client.get_inference_statistics(model),
                 "index": http_client.get_model_repository_index()},
        "grpc": {"live": grpc_client.is_server_live(), "ready": grpc_client.is_server_ready(),
                 "model_ready": grpc_client.is_model_ready(model),
                 "server": grpc_client.get_server_metadata(as_json=True),
                 "model": grpc_client.get_model_metadata(model, as_json=True),
                 "config": grpc_client.get_model_config(model, as_json=True),
                 "stats": grpc_client.get_inference_statistics(model, as_json=True),
                 "index": grpc_client.get_model_repository_index(as_json=True)},
    }


def classify(http, grpc, model, output, count, feeds):
    """tritonclient's classification extension, as its users call it: InferRequestedOutput(class_count=K)."""
    http_result = httpclient.InferenceServerClient(http).infer(
        model, _http_inputs(feeds), outputs=[httpclient.InferRequestedOutput(output, class_count=count)])
    grpc_result = grpcclient.InferenceServerClient(grpc).infer(
        model, _grpc_inputs(feeds), outputs=[grpcclient.InferRequestedOutput(output, class_count=count)])
    return {mode: [[item.decode() for item in row] for row in result.as_numpy(output).reshape(-1, count)]
            for mode, result in (("http", http_result), ("grpc", grpc_result))}


def shared_memory(http, grpc, model, feeds, names, out_bytes):
    """tritonclient's system shared memory utilities as its users call them: each input written into one
    region, each output read back from another; over HTTP and gRPC, with the regions' status."""
    import os
    import tritonclient.utils.shared_memory as shm
    from tritonclient.utils import triton_to_np_dtype
    results, statuses = {}, {}
    in_bytes = sum(value.nbytes for value in feeds.values())
    for mode, module, address in (("http", httpclient, http), ("grpc", grpcclient, grpc)):
        client = module.InferenceServerClient(address)
        key_in, key_out = f"/modelport_in_{mode}_{os.getpid()}", f"/modelport_out_{mode}_{os.getpid()}"
        handle_in = shm.create_shared_memory_region(f"in_{mode}", key_in, in_bytes)
        handle_out = shm.create_shared_memory_region(f"out_{mode}", key_out, out_bytes * len(names))
        try:
            inputs, offset = [], 0
            for name, value in feeds.items():
                shm.set_shared_memory_region(handle_in, [np.ascontiguousarray(value)], offset=offset)
                tensor = module.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
                tensor.set_shared_memory(f"in_{mode}", value.nbytes, offset=offset)
                inputs.append(tensor)
                offset += value.nbytes
            client.register_system_shared_memory(f"in_{mode}", key_in, in_bytes)
            client.register_system_shared_memory(f"out_{mode}", key_out, out_bytes * len(names))
            outputs = []
            for index, name in enumerate(names):
                output = module.InferRequestedOutput(name)
                output.set_shared_memory(f"out_{mode}", out_bytes, offset=index * out_bytes)
                outputs.append(output)
            result = client.infer(model, inputs, outputs=outputs)
            for index, name in enumerate(names):
                meta = result.get_output(name)
                shape = list(meta["shape"] if mode == "http" else meta.shape)
                datatype = meta["datatype"] if mode == "http" else meta.datatype
                results[f"{mode}/{name}"] = shm.get_contents_as_numpy(
                    handle_out, triton_to_np_dtype(datatype), shape, offset=index * out_bytes).copy()
            status = client.get_system_shared_memory_status(**({} if mode == "http" else {"as_json": True}))
            statuses[mode] = status
            client.unregister_system_shared_memory()
            statuses[f"{mode}-after"] = client.get_system_shared_memory_status(
                **({} if mode == "http" else {"as_json": True}))
        finally:
            shm.destroy_shared_memory_region(handle_in)
            shm.destroy_shared_memory_region(handle_out)
    try:
        grpcclient.InferenceServerClient(grpc).get_cuda_shared_memory_status()
        statuses["grpc-cuda"] = "answered"
    except InferenceServerException as exc:
        statuses["grpc-cuda"] = f"{exc.status()} {exc.message()}"
    return results, statuses


def images(http, grpc, model, output, count, files):
    """Encoded image files sent as a BYTES tensor, one per row, the top classes asked for by
    InferRequestedOutput(class_count=K): what an app that has JPEGs, not tensors, sends."""
    rows = np.array([open(path, "rb").read() for path in files], dtype=np.object_)
    answers = {}
    for mode, module in (("http", httpclient), ("grpc", grpcclient)):
        tensor = module.InferInput("image", [len(rows)], "BYTES")
        tensor.set_data_from_numpy(rows)
        client = module.InferenceServerClient(http if mode == "http" else grpc)
        result = client.infer(model, [tensor], outputs=[module.InferRequestedOutput(output, class_count=count)])
        answers[mode] = [[item.decode() for item in row] for row in result.as_numpy(output).reshape(-1, count)]
    return answers


def main(argv):
    command = argv[0]
    if command in ("infer", "infer-kserve", "concurrent"):
        http, grpc, model, inputs, out = argv[1:6]
        feeds = dict(np.load(inputs))
        names = [o["name"] for o in requests.get(f"http://{http}/v2/models/{model}", timeout=30).json()["outputs"]]
        run = {"infer": infer_all, "infer-kserve": kserve_clients, "concurrent": concurrent}[command]
        results = run(http, grpc, model, feeds, names)
        np.savez(out, **{f"{mode}/{name}": value for mode, arrays in results.items() for name, value in arrays.items()})
        print(json.dumps({"modes": sorted(results)}))
    elif command == "images":
        http, grpc, model, output, count, *files = argv[1:]
        print(json.dumps(images(http, grpc, model, output, int(count), files)))
    elif command == "shm":
        http, grpc, model, inputs, out, out_bytes = argv[1:7]
        names = [o["name"] for o in requests.get(f"http://{http}/v2/models/{model}", timeout=30).json()["outputs"]]
        results, statuses = shared_memory(http, grpc, model, dict(np.load(inputs)), names, int(out_bytes))
        np.savez(out, **results)
        print(json.dumps(statuses, default=str))
    elif command == "errors":
        print(json.dumps(errors(*argv[1:3])))
    elif command == "meta":
        print(json.dumps(meta(*argv[1:4]), default=str))
    elif command == "classify":
        http, grpc, model, output, count, inputs = argv[1:7]
        print(json.dumps(classify(http, grpc, model, output, int(count), dict(np.load(inputs)))))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
