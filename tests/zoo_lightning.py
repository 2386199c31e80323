"""LightningModules for the checkpoint tests, trained for a few steps by a real lightning.Trainer."""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch


class LitClassifier(L.LightningModule):
    """A small CNN with BatchNorm; saves its hyper-parameters and declares an example input."""

    def __init__(self, hidden: int = 16, classes: int = 3, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, hidden, 3, padding=1), torch.nn.BatchNorm2d(hidden), torch.nn.ReLU(),
            torch.nn.Conv2d(hidden, hidden, 3, stride=2, padding=1), torch.nn.BatchNorm2d(hidden), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(hidden, classes))
        self.example_input_array = torch.zeros(1, 3, 16, 16)

    def forward(self, image):
        return self.net(image)

    def training_step(self, batch, batch_index):
        image, label = batch
        loss = torch.nn.functional.cross_entropy(self(image), label)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def plain_net() -> torch.nn.Module:
    """The network alone, as a user's model code builds it outside Lightning."""
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 2))


class LitWrapper(L.LightningModule):
    """Holds a plain network as self.model (its checkpoint keys carry 'model.'); no hyper-parameters."""

    def __init__(self):
        super().__init__()
        self.model = plain_net()

    def forward(self, features):
        return self.model(features)

    def training_step(self, batch, batch_index):
        features, target = batch
        return torch.nn.functional.mse_loss(self(features), target)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def _data(shape, target, seed: int):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(64, *shape, generator=generator)
    targets = target(inputs, generator)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, targets), batch_size=16)


def train(module: L.LightningModule, loader, folder: Path, steps: int = 12) -> Path:
    """A few real optimizer steps on CPU, then the checkpoint the Trainer writes."""
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, default_root_dir=str(folder))
    trainer.fit(module, loader)
    path = folder / f"{type(module).__name__}.ckpt"
    trainer.save_checkpoint(path)
    return path


def save_all(folder: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    classifier_data = _data((3, 16, 16), lambda x, g: (x.mean(dim=(1, 2, 3)) > 0).long() + (x[:, 0].mean((1, 2)) > 0.1).long(), 1)
    wrapper_data = _data((6,), lambda x, g: torch.stack([x[:, :3].sum(1), x[:, 3:].prod(1)], 1), 2)
    return {"classifier": train(LitClassifier(hidden=12, lr=0.05), classifier_data, folder),
            "wrapper": train(LitWrapper(), wrapper_data, folder)}
