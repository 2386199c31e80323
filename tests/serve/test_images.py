"""Images in: a classifier whose config.pbtxt declares its preprocessing takes JPEG/PNG/WebP files as a
BYTES tensor from tritonclient (HTTP and gRPC) and answers the labelled top 5 that client-side
preprocessing (Pillow, resize, normalize) + ONNX Runtime give; what is not an image, is truncated
or decodes to 400 megapixels is refused with 400 before the model runs; a model that declares
nothing takes no images and says how to declare it."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import requests

from tests.serve.conftest import ort_outputs, repository_of, run_client, start_server

LABELS = [f"class_{i}" for i in range(10)]
MEAN, STD = (120.0, 115.0, 100.0), (60.0, 58.0, 57.0)
CONFIG = ('max_batch_size: 8\n'
          'parameters { key: "image_mean" value: { string_value: "120,115,100" } }\n'
          'parameters { key: "image_std" value: { string_value: "60,58,57" } }\n')


@pytest.fixture(scope="module")
def image_server(serve_models, tmp_path_factory):
    root = repository_of(tmp_path_factory.mktemp("images-repo"), serve_models["cnn"],
                         {"photos": CONFIG, "tensors": None})
    (root / "photos" / "labels.txt").write_text("\n".join(LABELS) + "\n")
    server = start_server([root], tmp_path_factory.mktemp("images-log") / "server.log")
    yield server
    assert server.stop() == 0, server.log()


def _photos(folder) -> list:
    """Three real encoded files of other sizes than the model's 32x32: stripes and blobs in colour."""
    from PIL import Image
    rng = np.random.default_rng(4)
    paths = []
    for index, (size, kind) in enumerate((((64, 48), "JPEG"), ((40, 40), "PNG"), ((50, 70), "WEBP"))):
        y, x = np.mgrid[0:size[1], 0:size[0]]
        mask = ((x + (index + 1) * y) // 6) % 2
        pixels = mask[..., None] * rng.integers(60, 255, 3) + rng.normal(0, 25, (size[1], size[0], 3))
        path = folder / f"photo{index}.{kind.lower()}"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, kind)
        paths.append(path)
    return paths


def _client_side(paths) -> np.ndarray:
    """What a client would do itself: decode with Pillow, RGB, 32x32 bilinear, (x - mean) / std, NCHW."""
    from PIL import Image
    batch = []
    for path in paths:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB").resize((32, 32), Image.BILINEAR), np.float32)
        batch.append(((pixels - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)).transpose(2, 0, 1))
    return np.stack(batch)


def test_encoded_images_get_the_labels_client_side_preprocessing_gets(image_server, serve_models, tmp_path):
    paths = _photos(tmp_path)
    answers = run_client("images", image_server.http, image_server.grpc, "photos", "output", 5, *paths)
    scores = ort_outputs(serve_models["cnn"], {"image": _client_side(paths)})["output"]
    expected = [[f"{row[i]:f}:{i}:{LABELS[i]}" for i in np.argsort(-row.astype(np.float64), kind="stable")[:5]]
                for row in scores]
    assert answers["http"] == expected and answers["grpc"] == expected
    assert len({tuple(row) for row in expected}) > 1   # the images are told apart


def _binary_bytes(url: str, model: str, items: list[bytes]):
    blob = b"".join(struct.pack("<I", len(item)) + item for item in items)
    header = ('{"inputs": [{"name": "image", "shape": [%d], "datatype": "BYTES", '
              '"parameters": {"binary_data_size": %d}}]}' % (len(items), len(blob))).encode()
    return requests.post(f"{url}/v2/models/{model}/infer", data=header + blob, timeout=30,
                         headers={"Inference-Header-Content-Length": str(len(header)),
                                  "Content-Type": "application/octet-stream"})


def _bomb() -> bytes:
    """A valid 1x1 PNG whose header claims 20,000 x 20,000 pixels (400 MP): a decompression bomb's
    header, which must be refused before anything is decoded."""
    from PIL import Image
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    png = bytearray(buffer.getvalue())
    png[16:24] = struct.pack(">II", 20000, 20000)           # IHDR width and height
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])) & 0xFFFFFFFF)
    return bytes(png)


def test_bad_images_are_refused_before_the_model_runs(image_server, tmp_path):
    url = image_server.url
    good = _photos(tmp_path)[0].read_bytes()
    before = requests.get(f"{url}/v2/models/photos/stats", timeout=10).json()["model_stats"][0]["execution_count"]
    for items, says in (([b"this is not a picture"], "row 0 is not an image"),
                        ([good, good[: len(good) // 2]], "row 1 is truncated or corrupt"),
                        ([_bomb()], "pixels")):
        answer = _binary_bytes(url, "photos", items)
        assert answer.status_code == 400 and says in answer.json()["error"], (says, answer.text)
    after = requests.get(f"{url}/v2/models/photos/stats", timeout=10).json()["model_stats"][0]["execution_count"]
    assert after == before
    assert _binary_bytes(url, "photos", [good]).status_code == 200
    refused = _binary_bytes(url, "tensors", [good])
    assert refused.status_code == 400 and "image_mean" in refused.json()["error"]
