"""What the edge tests share: a small classifier trained here, with its labelled images."""
from __future__ import annotations

import numpy as np
import pytest

NORMALIZE = ("--mean", "127.5", "--std", "127.5")  # the stripes images' pixels to the CNN's -1..1


@pytest.fixture(scope="session")
def stripes_cnn(tmp_path_factory):
    """The demo's stripes classifier (trained, so top-1 means something) as a .pt2 with a dynamic
    batch, its labelled images in class folders, and a copy with one conv weight off by 1%."""
    import torch
    from modelport.demo_classifier import SIZE, save_images, trained_cnn
    folder = tmp_path_factory.mktemp("stripes_cnn")
    model = trained_cnn(120).eval()
    example = (torch.zeros(2, 3, SIZE, SIZE),)
    batch = {0: torch.export.Dim("batch")}
    torch.export.save(torch.export.export(model, example, dynamic_shapes=(batch,)), folder / "cnn.pt2")
    with torch.no_grad():
        model[4].weight[3] *= 1.01  # the second conv: one output channel's filter, 1% off
    torch.export.save(torch.export.export(model, example, dynamic_shapes=(batch,)), folder / "defect.pt2")
    save_images(folder / "images", 24)
    return folder


@pytest.fixture(scope="session")
def keras_cnn(tmp_path_factory):
    """A Keras CNN with BatchNorm statistics calibrated on its data (random logits would tie), and
    that data as the calibration file."""
    from tests import zoo_keras
    folder = tmp_path_factory.mktemp("edge_keras")
    model = zoo_keras.cnn_batchnorm()
    data = np.random.default_rng(0).uniform(0, 1, (64, 16, 16, 3)).astype(np.float32)
    zoo_keras.calibrate_batchnorm(model, data)
    model.save(folder / "cnn.keras")
    np.savez(folder / "calib.npz", image=data)
    return folder / "cnn.keras", folder / "calib.npz"
