"""Hugging Face decoders -> ONNX decoder folders with their key/value cache (``--to hf-onnx``).

Each family's model is lightly trained (tests/hf_decoders.py) so that greedy decoding means
something. The conversion's own check (greedy tokens and step logits against transformers'
``generate``, in ONNX Runtime and in transformers.js) must pass; the tests also check the folder
against transformers directly, and that a defect only the cache carries fails the check.
"""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from tests import hf_decoders
from tests.conftest import listing

NEW_TOKENS = 12


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """family -> (source folder, converted folder, the CLI's JSON), made on first use."""
    made = {}
    root = tmp_path_factory.mktemp("decoders")

    def get(family, cli):
        if family not in made:
            source = hf_decoders.save_folder(family, root / family)
            converted = root / f"{family}-onnx"
            result = cli("convert", source, converted, "--to", "hf-onnx", "--json")
            assert result.code == 0, result.out[-3000:] + result.err[-3000:]
            made[family] = (source, converted, result.json())
        return made[family]
    return get


@pytest.mark.parametrize("family", hf_decoders.DECODERS)
def test_decoder_folder_generates_what_transformers_generates(cli, folders, family):
    source, converted, report = folders(family, cli)
    # the layout transformers.js loads, with the source's tokenizer and generation config beside it
    assert {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "onnx/model.onnx"} <= set(listing(converted))
    parity = report["hops"][0]["parity"]
    runtimes = parity["generation"]["runtimes"]
    assert set(runtimes) == {"onnxruntime", "transformers.js"}, parity["generation"]
    assert all(r["identical"] for r in runtimes.values()), runtimes
    # its names and dims are the ones ONNX Runtime users and transformers.js feed
    graph = onnx.load(str(converted / "onnx" / "model.onnx"), load_external_data=False).graph
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*graph.input, *graph.output]}
    assert dims["input_ids"] == ["batch_size", "sequence_length"]
    assert dims["attention_mask"] == ["batch_size", "total_sequence_length"]
    assert dims["past_key_values.0.key"][0::2] == ["batch_size", "past_sequence_length"]
    assert dims["present.1.value"][0::2] == ["batch_size", "total_sequence_length"]
    assert dims["logits"][:2] == ["batch_size", "sequence_length"]
    # independent of the check: modelport.generate (ONNX Runtime) against transformers directly,
    # from a prompt the model learned to continue
    import modelport
    prompt = hf_decoders.prompt(7, 4)
    expected = hf_decoders.transformers_greedy(source, prompt, NEW_TOKENS)
    assert modelport.generate(converted, prompt, NEW_TOKENS) == expected
    assert expected == hf_decoders.prompt(int(hf_decoders.PERMUTATION[prompt[-1]]), NEW_TOKENS)  # it was trained


@pytest.mark.parametrize("family", sorted(hf_decoders.SEQ2SEQ))
def test_encoder_decoder_folder_generates_what_transformers_generates(cli, folders, family):
    source, converted, report = folders(family, cli)
    assert {"onnx/encoder_model.onnx", "onnx/decoder_model_merged.onnx", "tokenizer.json"} <= set(listing(converted))
    runtimes = report["hops"][0]["parity"]["generation"]["runtimes"]
    assert set(runtimes) == {"onnxruntime", "transformers.js"} and all(r["identical"] for r in runtimes.values())
    graph = onnx.load(str(converted / "onnx" / "decoder_model_merged.onnx")).graph
    names = [v.name for v in graph.input]
    assert names[:3] == ["encoder_attention_mask", "input_ids", "encoder_hidden_states"]
    assert names[3:7] == [f"past_key_values.0.{part}.{kind}" for part in ("decoder", "encoder") for kind in ("key", "value")]
    import modelport
    prompt = [5, 5, 5, 5]
    expected = hf_decoders.transformers_greedy(source, prompt, NEW_TOKENS)
    assert modelport.generate(converted, prompt, NEW_TOKENS) == expected
    assert expected == hf_decoders.prompt(int(hf_decoders.PERMUTATION[5]), NEW_TOKENS)  # it was trained


def test_a_defect_only_the_cache_carries_fails_the_generation_check(cli, folders, tmp_path):
    """Layer 0's returned values scaled by 1.01: the forward pass at an empty past is untouched (its
    logits pass), every later step reads a wrong past, and the check must say so."""
    source, converted, _ = folders("llama", cli)
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in converted.iterdir():
        if item.is_file():
            (broken / item.name).write_bytes(item.read_bytes())
    model = onnx.load(str(converted / "onnx" / "model.onnx"))
    for node in model.graph.node:  # the graph itself goes on reading the right values
        for field in (node.input, node.output):
            for index, name in enumerate(field):
                if name == "present.0.value":
                    field[index] = "present.0.value.unscaled"
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(1.01, np.float32), "defect.scale"))
    model.graph.node.append(onnx.helper.make_node("Mul", ["present.0.value.unscaled", "defect.scale"],
                                                  ["present.0.value"]))
    (broken / "onnx").mkdir()
    onnx.save(model, str(broken / "onnx" / "model.onnx"))
    result = cli("validate", source, broken, "--json", "--report", tmp_path / "report.html")
    assert result.code == 1, result.out[-3000:]
    report = result.json()
    page = (tmp_path / "report.html").read_text()
    assert "Greedy generation" in page and "id='generation'" in page
    assert all(o["passed"] for o in report["outputs"])  # one forward pass cannot see it
    assert any("greedy generation in onnxruntime" in f and "logits differ" in f for f in report["failures"])


def test_ties_are_reported_and_other_partings_fail():
    from modelport.formats.hf_onnx import Generation
    from modelport.validate.generation import compare_generation
    from modelport.validate.tolerances import Tolerance
    tolerance = Tolerance(1e-5, 1e-5, "scale")
    logits = np.zeros((3, 5), np.float32)
    logits[:, 1] = 10.0
    logits[2, 3] = 10.0 - 5e-5  # step 2: token 3 is within rounding of token 1
    reference = Generation([1, 1, 1], logits, 1.0)
    tie = compare_generation([[0]], [reference], [Generation([1, 1, 3], logits + 1e-6, 1.0)], tolerance)[0]
    assert tie.first_divergence == 2 and tie.tie and not tie.problems
    logits_far = logits.copy()
    logits_far[2, 3] = 9.0
    parted = compare_generation([[0]], [Generation([1, 1, 1], logits_far, 1.0)],
                                [Generation([1, 1, 3], logits_far, 1.0)], tolerance)[0]
    assert parted.first_divergence == 2 and not parted.tie and "tokens part at step 2" in parted.problems[0]


def test_only_text_generation_models_make_decoder_folders(cli, tmp_path):
    import transformers
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                     intermediate_size=64, architectures=["BertForMaskedLM"])
    source = tmp_path / "bert"
    transformers.BertForMaskedLM(config).save_pretrained(source)
    result = cli("convert", source, tmp_path / "out", "--to", "hf-onnx")
    assert result.code == 2 and "text-generation" in result.err
    assert not (tmp_path / "out").exists()


def test_info_describes_the_folder_and_its_cache(cli, folders):
    _, converted, _ = folders("gpt2", cli)
    info = cli("info", converted, "--json")
    assert info.code == 0, info.err
    described = info.json()
    assert described["format"] == "hf-onnx" and described["layers"] == 2
    assert [i["name"] for i in described["inputs"]] == ["input_ids", "attention_mask"]
    assert "past_sequence_length" in described["cache"]
    json.dumps(described)


def test_weights_beyond_the_protobuf_limit_go_to_one_external_file(folders, cli, tmp_path, monkeypatch):
    """The limit lowered to nothing, so a small model takes the path a >2 GB one takes: its weights in
    onnx/model.onnx_data, read back by the check in ONNX Runtime and in transformers.js."""
    from modelport.convert import convert, hf_decoder
    source, _, _ = folders("llama", cli)
    monkeypatch.setattr(hf_decoder, "EXTERNAL_DATA_BYTES", 0)
    result = convert(source, tmp_path / "external", to="hf-onnx")
    assert sorted(p.name for p in (tmp_path / "external" / "onnx").iterdir()) == ["model.onnx", "model.onnx_data"]
    weights = sum(p.stat().st_size for p in source.glob("*.safetensors"))
    assert (tmp_path / "external" / "onnx" / "model.onnx_data").stat().st_size > 0.8 * weights
    runtimes = result.hops[0].report.generation["runtimes"]
    assert set(runtimes) == {"onnxruntime", "transformers.js"} and all(r["identical"] for r in runtimes.values())


def test_half_precision_is_judged_by_the_fp16_rule_and_by_generation(folders, cli, tmp_path):
    source, _, _ = folders("llama", cli)
    result = cli("convert", source, tmp_path / "half", "--to", "hf-onnx", "--dtype", "fp16", "--json")
    assert result.code == 0, result.out[-3000:] + result.err[-2000:]
    parity = result.json()["hops"][0]["parity"]
    assert parity["precision"] == "fp16"
    assert all(r["identical"] for r in parity["generation"]["runtimes"].values()), parity["generation"]
    graph = onnx.load(str(tmp_path / "half" / "onnx" / "model.onnx"), load_external_data=False).graph
    assert {i.type.tensor_type.elem_type for i in graph.input if i.name.startswith("past")} == {onnx.TensorProto.FLOAT16}
    for args, says in (((tmp_path / "x.onnx", "--dtype", "fp16"), "--to hf-onnx"),
                       ((tmp_path / "y", "--to", "hf-onnx", "--dtype", "int3"), "fp32, fp16")):
        refused = cli("convert", source, *args)
        assert refused.code == 2 and says in refused.err, refused.err
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y").exists()
