"""Small decoders that have learned something, saved as Hugging Face folders with a tokenizer: the
demo's decoder step and the tests' decoder families start here (imported only where needed: it
imports torch and transformers).

Random weights make greedy decoding meaningless: the logits are flat (scale ~0.5) and the argmax
repeats one token or flips on rounding. A model here is trained for a few seconds on sequences
that follow a fixed permutation of its vocabulary (token t is followed by PERMUTATION[t]), so its
greedy output walks that permutation with clear margins, and a defect that moves the logits moves
the tokens. The tokenizer is a word-level one over the words "t0".."t{V-1}", so text prompts work
too (the server's generate endpoint, transformers.js).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

VOCABULARY = 100
TRAIN_STEPS = 120
SEQ2SEQ_STEPS = 150  # T5 learns the task by then at this rate, and loses it again by 240
PERMUTATION = np.random.default_rng(1234).permutation(VOCABULARY)


def training_batch(rng: np.random.Generator, batch: int = 16, length: int = 24) -> torch.Tensor:
    rows = np.empty((batch, length), np.int64)
    rows[:, 0] = rng.integers(0, VOCABULARY, batch)
    for position in range(1, length):
        rows[:, position] = PERMUTATION[rows[:, position - 1]]
    return torch.from_numpy(rows)


def train(model, steps: int = TRAIN_STEPS):
    """``steps`` of Adam on the permutation sequences; the model back in eval mode."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        ids = training_batch(rng)
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def word_tokenizer():
    """A word-level fast tokenizer over "t0".."t{V-1}" (whitespace-separated), as transformers saves it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(VOCABULARY)}, unk_token="t0"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins the words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="t0")


def save_folder(model, folder: Path) -> Path:
    """``save_pretrained`` with the tokenizer beside it; no end-of-sequence token inside the
    vocabulary, so every check decodes a fixed number of new tokens."""
    for config in (model.config, model.generation_config):
        config.eos_token_id = config.bos_token_id = None
    model.generation_config.pad_token_id = None
    model.save_pretrained(folder)
    word_tokenizer().save_pretrained(folder)
    return folder


def demo_gpt2(folder: Path) -> Path:
    """The demo's decoder: a 2-layer GPT-2, trained, saved."""
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCABULARY, n_embd=32, n_layer=2, n_head=4, n_positions=64))
    return save_folder(train(model), folder)


def walk(start: int, length: int) -> list[int]:
    """``length`` tokens of the permutation walk from ``start`` (what a trained model continues)."""
    ids = [start]
    while len(ids) < length:
        ids.append(int(PERMUTATION[ids[-1]]))
    return ids


def train_seq2seq(model, steps: int = SEQ2SEQ_STEPS):
    """An encoder-decoder learns to continue the permutation walk from its source's token: a source
    of one token t (repeated) is answered with PERMUTATION[t], then that token's successor, and so
    on; its greedy output then walks the permutation with clear margins whatever it is given."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        first = rng.integers(0, VOCABULARY, 16)
        source = torch.from_numpy(np.repeat(first[:, None], 6, axis=1))
        target = np.empty((16, 12), np.int64)
        target[:, 0] = PERMUTATION[first]
        for position in range(1, target.shape[1]):
            target[:, position] = PERMUTATION[target[:, position - 1]]
        loss = model(input_ids=source, labels=torch.from_numpy(target), use_cache=False).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()
