"""validate --data: both models over a labelled image folder (or .npz), each model's accuracy against
the labels, their agreement and the classes that flip. The classifier is trained for a few seconds
on a learnable task (stripes of three orientations), so accuracy means something; the figures are
checked against ONNX Runtime run directly on the same pixels."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from modelport import demo_classifier

CLASSES = demo_classifier.CLASSES
PER_CLASS = 12
MEAN, STD = demo_classifier.MEAN, demo_classifier.STD


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """(image folder, npz, trained model.onnx, a copy whose 'vertical' logit is pushed down, pixels, labels)."""
    import modelport
    root = tmp_path_factory.mktemp("labelled")
    pixels, labels = demo_classifier.save_images(root / "images", PER_CLASS)
    np.savez(root / "data.npz", inputs=pixels, labels=labels)
    demo_classifier.save_program(demo_classifier.trained_cnn(), root / "model.pt2")
    modelport.convert(root / "model.pt2", root / "model.onnx")
    broken = onnx.load(str(root / "model.onnx"))
    bias = next(i for i in broken.graph.initializer if tuple(i.dims) == (len(CLASSES),))
    values = onnx.numpy_helper.to_array(bias).copy()
    values[1] -= 50.0  # vertical stripes lose to the others
    bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
    onnx.save(broken, str(root / "broken.onnx"))
    return root / "images", root / "data.npz", root / "model.onnx", root / "broken.onnx", pixels, labels


def _ort_top1(path, pixels):
    import onnxruntime as ort
    session = ort.InferenceSession(str(path))
    return session.run(None, {session.get_inputs()[0].name: pixels})[0].argmax(axis=1)


def test_the_same_model_scores_the_same_and_nothing_flips(cli, labelled):
    images, _, model, _, pixels, labels = labelled
    result = cli("validate", model, model, "--data", images, "--mean", str(MEAN), "--std", str(STD), "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    dataset = result.json()["dataset"]
    expected = float(np.mean(_ort_top1(model, pixels) == labels))
    assert dataset["samples"] == len(labels) and dataset["classes"] == sorted(CLASSES)
    assert dataset["reference_top1"] == dataset["candidate_top1"] == pytest.approx(expected)
    assert expected > 0.9  # the model learned the task: accuracy means something
    assert dataset["flips"] == 0 and dataset["agreement_top1"] == 1.0


def test_a_defect_costs_accuracy_and_the_flips_name_the_classes(cli, labelled):
    """The --data npz form, and a candidate whose 'vertical' score is pushed down: parity fails (exit 1)
    and the dataset figures say what it costs, against ONNX Runtime's own classes."""
    _, npz, model, broken, pixels, labels = labelled
    result = cli("validate", model, broken, "--data", npz, "--json", "--report", npz.parent / "flips.html")
    assert result.code == 1
    dataset = result.json()["dataset"]
    assert "id='dataset'" in (npz.parent / "flips.html").read_text()
    reference, candidate = _ort_top1(model, pixels), _ort_top1(broken, pixels)
    assert dataset["candidate_top1"] == pytest.approx(float(np.mean(candidate == labels)))
    assert dataset["candidate_top1"] < dataset["reference_top1"]
    assert dataset["flips"] == int(np.sum(reference != candidate)) > 0
    # classes of the npz form are numbered; "1" is vertical
    assert dataset["flip_pairs"][0]["reference"] == "1"
    assert next(c for c in dataset["per_class"] if c["class"] == "1")["candidate"] < 0.5


def test_bad_labelled_data_is_refused(cli, labelled, tmp_path):
    _, _, model, _, pixels, _ = labelled
    (tmp_path / "one" / "only").mkdir(parents=True)
    (tmp_path / "one" / "only" / "a.png").write_bytes((labelled[0] / "1_vertical" / "00.png").read_bytes())
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir(parents=True)
    np.savez(tmp_path / "nolabels.npz", inputs=pixels)
    np.savez(tmp_path / "short.npz", inputs=pixels, labels=np.zeros(3, np.int64))
    for data, says in ((tmp_path / "one", "at least two"), (tmp_path / "empty", "holds no images"),
                       (tmp_path / "nolabels.npz", "no 'labels'"), (tmp_path / "short.npz", "differ")):
        refused = cli("validate", model, model, "--data", data)
        assert refused.code == 2 and says in refused.err, (data, refused.err)


def test_bgr_reverses_the_channels_before_normalizing(labelled):
    from modelport.tensors import TensorSpec
    from modelport.validate.inputs import load_image_folder
    spec = TensorSpec("image", (None, 3, 32, 32), np.float32)
    folder = labelled[0] / "0_horizontal"
    rgb = load_image_folder(folder, spec, mean=[10, 20, 30], std=[1, 2, 3])
    bgr = load_image_folder(folder, spec, mean=[30, 20, 10], std=[3, 2, 1], channel_order="BGR")
    np.testing.assert_allclose(bgr, rgb[:, ::-1])
    assert not np.allclose(bgr, rgb)


def test_keras_against_its_int8_tflite_on_labelled_data(cli, labelled, tmp_path):
    """The pair the issue names: a Keras classifier (it rescales raw pixels itself) and the int8 TFLite
    file of its edge bundle, both over the labelled folder: accuracy of each and the flips, with the
    TFLite file's own int8 input handled by the pairing."""
    import shutil
    import keras
    images = labelled[0]
    rng = np.random.default_rng(5)
    kinds = rng.integers(0, len(CLASSES), 600)
    pictures = np.stack([demo_classifier.stripes(int(k), rng) for k in kinds]).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(CLASSES))])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(pictures, kinds, epochs=4, batch_size=32, verbose=0)
    model.save(tmp_path / "stripes.keras")
    (tmp_path / "flat").mkdir()
    for path in images.rglob("*.png"):
        shutil.copy(path, tmp_path / "flat" / f"{path.parent.name}_{path.name}")
    bundle = cli("edge", "tflite", tmp_path / "stripes.keras", tmp_path / "bundle", "--quantize", "int8",
                 "--calibration", tmp_path / "flat")
    assert bundle.code == 0, bundle.err[-2000:]
    result = cli("validate", tmp_path / "stripes.keras", tmp_path / "bundle" / "model_int8.tflite", "--data", images,
                 "--json")
    assert result.code == 0, result.out[-2000:] + result.err[-2000:]
    dataset = result.json()["dataset"]
    assert dataset["samples"] == len(labelled[5]) and dataset["reference_top1"] > 0.9
    assert dataset["candidate_top1"] >= dataset["reference_top1"] - 0.1
    assert dataset["flips"] == round((1 - dataset["agreement_top1"]) * dataset["samples"])
