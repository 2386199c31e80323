"""The demo's LightningModule (``modelport.demo_lightning:DemoClassifier``), trained for a few
steps by ``lightning.Trainer``; imported only by the demo step that needs Lightning."""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch


class DemoClassifier(L.LightningModule):
    def __init__(self, hidden: int = 16, classes: int = 4):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))
        self.example_input_array = torch.zeros(1, 8)

    def forward(self, features):
        return self.net(features)

    def training_step(self, batch, batch_index):
        features, label = batch
        return torch.nn.functional.cross_entropy(self(features), label)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.02)


def train_checkpoint(path: Path) -> Path:
    """A few optimizer steps on a synthetic task, then the checkpoint the Trainer saves."""
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(128, 8, generator=generator)
    labels = (features[:, :4] * features[:, 4:]).argmax(dim=1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(features, labels), batch_size=32)
    trainer = L.Trainer(max_steps=20, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, default_root_dir=str(path.parent))
    trainer.fit(DemoClassifier(hidden=24), loader)
    trainer.save_checkpoint(path)
    return path
