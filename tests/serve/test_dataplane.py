"""The data plane in-process: tensor decoding, request checks and dynamic batching with a real ONNX
Runtime session (the reference is the same model run by ORT directly, one request at a time)."""
from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest

from modelport.errors import ServeError
from modelport.serve.batching import Batcher
from modelport.serve.codec import Raw, decode, encode_raw, split_bytes
from modelport.serve.dataplane import DataPlane, InferInput, InferRequest, RequestedOutput
from modelport.serve.repository import Repository, ServeOptions
from tests.serve.conftest import ort_outputs


# -- codec --------------------------------------------------------------------------------------------
def test_raw_tensors_round_trip_every_numeric_datatype():
    for datatype, dtype in (("FP32", np.float32), ("FP16", np.float16), ("FP64", np.float64), ("INT8", np.int8),
                            ("INT64", np.int64), ("UINT16", np.uint16), ("BOOL", np.bool_)):
        value = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
        back = decode("x", datatype, (3, 4), Raw(encode_raw(value)))
        assert back.dtype == value.dtype
        np.testing.assert_array_equal(back, value)


def test_bytes_elements_are_length_prefixed():
    wire = encode_raw(np.array([b"ab", b"", "\u00e9"], dtype=object))
    assert wire == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 0) + struct.pack("<I", 2) + "\u00e9".encode()
    assert split_bytes("s", wire, 3) == [b"ab", b"", "\u00e9".encode()]
    with pytest.raises(ServeError, match="runs past the end"):
        split_bytes("s", struct.pack("<I", 9) + b"ab", 1)
    with pytest.raises(ServeError, match="2 BYTES elements, but the shape holds 3"):
        split_bytes("s", encode_raw(np.array([b"a", b"b"], dtype=object)), 3)


@pytest.mark.parametrize("datatype,values,words", [
    ("INT32", [1.5, 2], "must be integers"),
    ("UINT8", [1, 256], "outside the range of UINT8"),
    ("UINT8", [-1, 2], "outside the range"),
    ("BOOL", [1, 0], "must be true/false"),
    ("FP32", [True, False], None),          # JSON booleans are numbers to numpy: accepted as 1.0/0.0
    ("FP32", ["1", "2"], "must be numbers"),
    ("FP32", [1.0], "1 values, but shape [2] holds 2"),
])
def test_json_values_must_fit_their_datatype(datatype, values, words):
    if words is None:
        assert decode("x", datatype, (2,), values).tolist() == [1.0, 0.0]
        return
    with pytest.raises(ServeError, match=words.replace("[", r"\[").replace("]", r"\]")):
        decode("x", datatype, (len(values) if "holds" not in words else 2,), values)


def test_raw_size_must_match_the_shape():
    with pytest.raises(ServeError, match="8 bytes of binary data, but shape \\[3\\] of FP32 needs 12"):
        decode("x", "FP32", (3,), Raw(b"\0" * 8))


# -- batching with a real runtime -------------------------------------------------------------------
@pytest.fixture(scope="module")
def cnn_session(serve_models):
    from modelport.formats import open_model
    session = open_model(serve_models["cnn"])
    yield session
    session.close()


def test_merged_batch_equals_each_request_alone_bit_for_bit(cnn_session, serve_models):
    rows = np.random.default_rng(4).standard_normal((9, 3, 32, 32)).astype(np.float32)

    async def main():
        batcher = Batcher("cnn", [cnn_session.run], max_batch_size=8, delay_s=0.0, max_queue=64)
        batcher.start()
        # request 0 starts a run at once; 1..8 queue meanwhile and are merged (up to 8 rows)
        answers = await asyncio.gather(*(batcher.submit({"image": rows[i:i + 1]}) for i in range(9)))
        await batcher.close()
        return answers
    answers = asyncio.run(main())
    for i, answer in enumerate(answers):
        alone = ort_outputs(serve_models["cnn"], {"image": rows[i:i + 1]})["output"]
        np.testing.assert_array_equal(answer["output"], alone, err_msg=f"request {i}")


def test_batches_respect_max_rows_and_shapes(cnn_session):
    seen = []

    def recording_run(feeds):
        seen.append(feeds["image"].shape)
        return cnn_session.run(feeds)

    async def main():
        batcher = Batcher("cnn", [recording_run], max_batch_size=4, delay_s=0.05, max_queue=64)
        batcher.start()
        small = np.zeros((1, 3, 32, 32), np.float32)
        pair = np.zeros((2, 3, 32, 32), np.float32)
        await asyncio.gather(*(batcher.submit({"image": x}) for x in [small, pair, small, pair, small]))
        await batcher.close()
    asyncio.run(main())
    assert all(shape[0] <= 4 for shape in seen), seen
    assert sum(shape[0] for shape in seen) == 7 and len(seen) < 5, seen


def test_full_queue_refuses_then_recovers(cnn_session):
    async def main():
        release = asyncio.Event()
        loop = asyncio.get_running_loop()

        def blocked_run(feeds):
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
            return cnn_session.run(feeds)
        batcher = Batcher("cnn", [blocked_run], max_batch_size=0, delay_s=0.0, max_queue=2)
        batcher.start()
        x = {"image": np.zeros((1, 3, 32, 32), np.float32)}
        first = asyncio.create_task(batcher.submit(x))      # taken by the worker, blocked in the run
        await asyncio.sleep(0.05)
        queued = [asyncio.create_task(batcher.submit(x)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(ServeError, match="2 requests queued") as refused:
            await batcher.submit(x)
        assert refused.value.status == 503
        release.set()
        await asyncio.gather(first, *queued)
        assert (await batcher.submit(x))["output"].shape == (1, 10)   # and it recovers
        await batcher.close()
        with pytest.raises(ServeError, match="shutting down"):
            await batcher.submit(x)
    asyncio.run(main())


def test_requests_whose_client_left_are_skipped(cnn_session):
    runs = []

    def counting_run(feeds):
        runs.append(feeds["image"].shape[0])
        return cnn_session.run(feeds)

    async def main():
        batcher = Batcher("cnn", [counting_run], max_batch_size=8, delay_s=0.2, max_queue=64)
        batcher.start()
        x = {"image": np.zeros((1, 3, 32, 32), np.float32)}
        kept = asyncio.create_task(batcher.submit(x))
        gone = [asyncio.create_task(batcher.submit(x)) for _ in range(3)]
        await asyncio.sleep(0.01)
        for task in gone:
            task.cancel()
        await kept
        await batcher.close()
    asyncio.run(main())
    assert runs == [1], runs


# -- the data plane's checks --------------------------------------------------------------------------
def test_request_checks_name_the_input(serve_models):
    async def main():
        repository = Repository([serve_models["multi"]], ServeOptions(max_batch_size=4))
        await repository.load_all()
        plane = DataPlane(repository)
        features = InferInput("features", "FP32", [2, 4], [0.0] * 8)
        ids = InferInput("ids", "INT64", [2, 2], [1, 2, 3, 4])
        ok = await plane.infer(InferRequest("multi", inputs=[features, ids], outputs=[RequestedOutput("positive")]))
        assert [t.name for t in ok.outputs] == ["positive"] and ok.outputs[0].array.dtype == np.bool_
        cases = [
            ([features, InferInput("ids", "INT64", [3, 2], [1] * 6)], "disagree on the batch size"),
            ([features, InferInput("ids", "INT32", [2, 2], [1] * 4)], "input 'ids' of model 'multi' is INT64"),
            ([features, InferInput("ids", "INT64", [2, 3], [1] * 6)], "model 'multi' takes [-1, 2]"),
            ([features], "lacks input 'ids'"),
            ([InferInput("features", "FP32", [5, 4], [0.0] * 20), ids], "exceeds the max_batch_size 4 of model 'multi'"),
        ]
        for inputs, words in cases:
            with pytest.raises(ServeError) as refused:
                await plane.infer(InferRequest("multi", inputs=inputs))
            assert words in str(refused.value) and refused.value.status == 400, (words, str(refused.value))
        plane.draining = True
        with pytest.raises(ServeError, match="shutting down"):
            await plane.infer(InferRequest("multi", inputs=[features, ids]))
        await repository.close()
    asyncio.run(main())
