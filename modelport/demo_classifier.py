"""A labelled image set that a small CNN learns in seconds (stripes in three orientations), and
that CNN: the demo's `validate --data` step and its tests start here (imports torch and PIL; only
where needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Folder names sort in the order the model numbers its classes (as torchvision's ImageFolder numbers them).
CLASSES = ("0_horizontal", "1_vertical", "2_diagonal")
MEAN, STD = 127.5, 127.5  # pixels 0..255 -> -1..1, what the CNN is trained on
SIZE = 32


def stripes(kind: int, rng: np.random.Generator) -> np.ndarray:
    """A SIZE x SIZE RGB image of stripes in orientation ``kind`` (0 horizontal, 1 vertical, 2
    diagonal), random period, phase and colour, with noise."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    period, phase = rng.integers(4, 9), rng.integers(0, 8)
    coordinate = (y, x, x + y)[kind]
    mask = ((coordinate + phase) // (period // 2)) % 2
    image = mask[..., None] * rng.integers(80, 255, 3) + rng.normal(0, 20, (SIZE, SIZE, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def save_images(folder: Path, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """folder/<class>/NN.png for every class; returns (the normalized pixels NCHW, the labels)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image = stripes(label, rng)
            Image.fromarray(image).save(folder / name / f"{index:02d}.png")
            images.append(image)
            labels.append(label)
    pixels = (np.stack(images).astype(np.float32).transpose(0, 3, 1, 2) - MEAN) / STD
    return pixels, np.asarray(labels)


def trained_cnn(steps: int = 150):
    """A conv-BatchNorm-pool classifier trained on freshly drawn stripes for ``steps`` batches."""
    import torch
    from torch import nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, len(CLASSES)))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        kinds = rng.integers(0, len(CLASSES), 32)
        batch = np.stack([stripes(k, rng) for k in kinds]).astype(np.float32).transpose(0, 3, 1, 2)
        loss = nn.functional.cross_entropy(model(torch.from_numpy((batch - MEAN) / STD)), torch.from_numpy(kinds))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def save_program(model, path: Path) -> Path:
    """The model as a torch.export .pt2 with a dynamic batch."""
    import torch
    program = torch.export.export(model, (torch.zeros(2, 3, SIZE, SIZE),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, path)
    return path


def build(workdir: Path) -> None:
    """The demo's stripes/ image folder and stripes.pt2."""
    save_images(workdir / "stripes", per_class=20)
    save_program(trained_cnn(), workdir / "stripes.pt2")
