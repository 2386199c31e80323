"""Hugging Face model folders (save_pretrained) as a source: the head from the config or --task,
the inputs from the task, weights from safetensors only; every bad folder refused by name."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import listing

TEXT = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64)


def _save(folder, model, **kwargs):
    model.save_pretrained(folder, **kwargs)
    return folder


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    import transformers
    torch.manual_seed(0)
    config = transformers.BertConfig(num_labels=3, architectures=["BertForSequenceClassification"], **TEXT)
    return _save(tmp_path_factory.mktemp("hf") / "bert", transformers.BertForSequenceClassification(config).eval())


def test_a_folder_converts_with_the_inputs_its_task_takes(cli, bert_folder, tmp_path):
    info = cli("info", bert_folder, "--json")
    assert info.code == 0, info.err
    described = info.json()
    assert described["format"] == "huggingface" and described["task"] == "text-classification"
    assert [i["name"] for i in described["inputs"]] == ["input_ids", "attention_mask"]
    dst = tmp_path / "bert.onnx"
    result = cli("convert", bert_folder, dst, "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    # independent of modelport: ONNX Runtime against transformers on one real-looking batch
    import onnxruntime as ort
    import transformers
    ids = np.array([[5, 17, 42, 8, 3, 99, 1]], dtype=np.int64)
    mask = np.ones_like(ids)
    expected = transformers.AutoModelForSequenceClassification.from_pretrained(bert_folder).eval()(
        input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.detach().numpy()
    (got,) = ort.InferenceSession(str(dst)).run(None, {"input_ids": ids, "attention_mask": mask})
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_folder_validates_against_itself_without_a_generation_check(cli, bert_folder):
    result = cli("validate", bert_folder, bert_folder, "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    assert result.json()["generation"] is None  # a classifier does not decode token by token


def test_task_picks_another_head_and_one_it_lacks_is_refused_with_the_choices(cli, bert_folder, tmp_path):
    result = cli("convert", bert_folder, tmp_path / "features.onnx", "--task", "feature-extraction", "--json")
    assert result.code == 0, result.out[-2000:]
    assert "last_hidden_state" in [o["name"] for o in cli("info", tmp_path / "features.onnx", "--json").json()["outputs"]]
    refused = cli("convert", bert_folder, tmp_path / "x.onnx", "--task", "image-classification")
    assert refused.code == 2 and "no 'image-classification' head" in refused.err and "fill-mask" in refused.err
    assert cli("info", bert_folder, "--task", "summarize-it").code == 2
    assert not (tmp_path / "x.onnx").exists()


def test_an_image_classifier_takes_pixels_of_its_configured_size(cli, tmp_path):
    import transformers
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_labels=5, **{k: v for k, v in TEXT.items()
                                                                                    if k not in ("vocab_size", "max_position_embeddings")})
    folder = _save(tmp_path / "vit", transformers.ViTForImageClassification(config).eval())
    described = cli("info", folder, "--json").json()
    assert described["inputs"] == [{"name": "pixel_values", "shape": [None, 3, 32, 32], "dtype": "float32"}]
    assert cli("convert", folder, tmp_path / "vit.onnx").code == 0


def test_sharded_safetensors_are_read_and_a_missing_shard_is_named(cli, tmp_path):
    import transformers
    torch.manual_seed(0)
    folder = _save(tmp_path / "gpt2", transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=64)).eval(), max_shard_size="20KB")
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1 and (folder / "model.safetensors.index.json").exists()
    result = cli("convert", folder, tmp_path / "gpt2.onnx", "--json")
    assert result.code == 0, result.out[-2000:]
    shards[1].unlink()
    before = listing(tmp_path)
    refused = cli("convert", folder, tmp_path / "again.onnx")
    assert refused.code == 2 and shards[1].name in refused.err and listing(tmp_path) == before


@pytest.mark.parametrize("defect", ["no weights", "pickled weights", "unknown model type", "remote code"])
def test_bad_folders_are_refused_by_name(cli, bert_folder, tmp_path, defect):
    import shutil
    folder = tmp_path / "model"
    shutil.copytree(bert_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    expected = {"no weights": "no weights", "pickled weights": "pytorch_model.bin",
                "unknown model type": "not-a-model", "remote code": "auto_map"}[defect]
    if defect == "no weights":
        (folder / "model.safetensors").unlink()
    elif defect == "pickled weights":
        (folder / "model.safetensors").unlink()
        torch.save({"weight": torch.zeros(1)}, folder / "pytorch_model.bin")
    elif defect == "unknown model type":
        config["model_type"] = "not-a-model"
    else:
        config["auto_map"] = {"AutoModel": "modeling_mine.MyModel"}
    (folder / "config.json").write_text(json.dumps(config))
    before = listing(tmp_path)
    refused = cli("convert", folder, tmp_path / "m.onnx")
    assert refused.code == 2, refused.out + refused.err
    assert expected in refused.err and listing(tmp_path) == before


def test_task_on_a_model_that_is_not_a_folder_is_refused(cli, bert_folder, tmp_path):
    assert cli("convert", bert_folder, tmp_path / "m.onnx").code == 0
    refused = cli("convert", tmp_path / "m.onnx", tmp_path / "m.tflite", "--task", "fill-mask")
    assert refused.code == 2 and "--task" in refused.err


def test_a_speech_encoder_takes_a_second_of_raw_audio(cli, tmp_path):
    """Wav2Vec2ForCTC: raw samples, traced and checked at 16000 (shorter audio would not outlast
    its convolution stack); --dim still sizes it."""
    import transformers
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(vocab_size=32, conv_dim=(16, 16, 16), conv_stride=(5, 2, 2),
                                         conv_kernel=(10, 3, 3), num_conv_pos_embeddings=16,
                                         num_conv_pos_embedding_groups=4, architectures=["Wav2Vec2ForCTC"],
                                         **{k: v for k, v in TEXT.items() if k not in ("vocab_size", "max_position_embeddings")})
    folder = _save(tmp_path / "w2v", transformers.Wav2Vec2ForCTC(config).eval())
    result = cli("convert", folder, tmp_path / "w2v.onnx", "--dim", "sequence_length=4000", "--json")
    assert result.code == 0, result.out[-2000:]
    # 4000 samples: (4000 - 10) / 5 + 1 = 799 frames, then 399, then 199 after the strided convolutions
    assert result.json()["hops"][0]["parity"]["outputs"][0]["reference_shape"][1] == 199
