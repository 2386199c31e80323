"""The generate extension on a decoder folder: greedy tokens as transformers makes them, text in and
out through the folder's tokenizer, the stream adding up to the answer, every bad request refused
before the model runs, and OIP infer still answering for the same model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import requests
import torch

from tests import hf_decoders
from tests.serve.conftest import start_server


@pytest.fixture(scope="module")
def decoder(tmp_path_factory, serve_models):
    from modelport.convert import convert
    root = tmp_path_factory.mktemp("generate")
    source = hf_decoders.save_folder("llama", root / "source")
    convert(source, root / "llama", to="hf-onnx", check=False)
    server = start_server([root / "llama", serve_models["cnn"]], root / "server.log")
    yield source, server
    assert server.stop() == 0, server.log()


def _post(server, route, body, model="llama"):
    return requests.post(f"{server.url}/v2/models/{model}/{route}", json=body, timeout=60)


def test_generate_answers_with_transformers_tokens_and_text(decoder):
    source, server = decoder
    prompt = hf_decoders.prompt(11, 3)
    answer = _post(server, "generate", {"input_ids": prompt, "parameters": {"max_tokens": 10}, "id": "r1"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["output_ids"] == hf_decoders.transformers_greedy(source, prompt, 10) and body["id"] == "r1"
    assert body["text_output"] == " ".join(f"t{i}" for i in body["output_ids"])
    by_text = _post(server, "generate", {"text_input": " ".join(f"t{i}" for i in prompt),
                                         "parameters": {"max_tokens": 10}})
    assert by_text.status_code == 200 and by_text.json()["output_ids"] == body["output_ids"]


def test_the_stream_sends_each_token_then_the_whole_answer(decoder):
    _, server = decoder
    body = {"input_ids": [3, 4], "parameters": {"max_tokens": 5}}
    with requests.post(f"{server.url}/v2/models/llama/generate_stream", json=body, stream=True, timeout=60) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[len("data: "):]) for line in answer.iter_lines(decode_unicode=True)
                  if line.startswith("data: ")]
    assert [e["finished"] for e in events] == [False] * 5 + [True]
    whole = _post(server, "generate", body).json()
    assert [e["output_ids"][0] for e in events[:-1]] == whole["output_ids"] == events[-1]["output_ids"]
    assert "".join(e["text_output"] for e in events[:-1]) == whole["text_output"]


@pytest.mark.parametrize("body, says", [
    ({"input_ids": [5, 100]}, "outside the vocabulary"),
    ({"input_ids": [5], "text_input": "t5"}, "one of them"),
    ({"input_ids": []}, "non-empty list"),
    ({"input_ids": [5, "6"]}, "integer token ids"),
    ({"input_ids": [5], "parameters": {"temperature": 0.8}}, "greedy"),
    ({"input_ids": [5], "parameters": {"max_tokens": 0}}, "max_tokens"),
    ({"input_ids": [5], "parameters": {"max_tokens": 64}}, "positions"),
    ({"input_ids": [5], "parameters": {"top_k": 3}}, "unknown parameter"),
    ({"prompt": "t5"}, "unknown field"),
    ([1, 2], "JSON object"),
])
def test_bad_requests_are_refused_before_the_model_runs(decoder, body, says):
    _, server = decoder
    for route in ("generate", "generate_stream"):
        answer = _post(server, route, body)
        assert answer.status_code == 400 and says in answer.json()["error"], (route, answer.text)


def test_a_model_that_is_not_a_decoder_is_told_to_use_infer(decoder):
    _, server = decoder
    answer = _post(server, "generate", {"input_ids": [1]}, model="cnn")
    assert answer.status_code == 400 and "not a decoder" in answer.json()["error"]
    assert _post(server, "generate", {"input_ids": [1]}, model="nope").status_code == 404


def test_infer_runs_the_decoder_at_an_empty_past(decoder):
    source, server = decoder
    ids = np.array([[3, 4, 5]], np.int64)
    body = {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [1, 3], "data": ids.ravel().tolist()},
                       {"name": "attention_mask", "datatype": "INT64", "shape": [1, 3], "data": [1, 1, 1]}]}
    answer = _post(server, "infer", body)
    assert answer.status_code == 200, answer.text
    logits = np.array(answer.json()["outputs"][0]["data"], np.float32).reshape(1, 3, -1)
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(source).eval()
    with torch.inference_mode():
        expected = model(input_ids=torch.from_numpy(ids)).logits.numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_an_encoder_decoder_folder_generates_too(tmp_path, serve_models):
    """T5: the prompt goes to the encoder once, the decoder loops from its start token, server-side."""
    from modelport.convert import convert
    source = hf_decoders.save_folder("t5", tmp_path / "t5-source")
    convert(source, tmp_path / "t5", to="hf-onnx", check=False)
    server = start_server([tmp_path / "t5"], tmp_path / "server.log")
    try:
        answer = _post(server, "generate", {"input_ids": [5, 5, 5], "parameters": {"max_tokens": 6}}, model="t5")
        text = _post(server, "generate", {"text_input": "t5 t5 t5", "parameters": {"max_tokens": 6}}, model="t5")
    finally:
        assert server.stop() == 0, server.log()
    assert answer.status_code == 200, answer.text
    assert answer.json()["output_ids"] == hf_decoders.transformers_greedy(source, [5, 5, 5], 6)
    assert text.json()["output_ids"] == answer.json()["output_ids"]
