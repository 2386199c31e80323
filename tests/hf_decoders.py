"""Small decoders of each family, lightly trained, saved as Hugging Face folders with a tokenizer.

Random weights make greedy decoding meaningless: the logits are flat (scale ~0.5) and the argmax
repeats one token or flips on rounding. Each model here is trained for a few seconds on sequences
that follow a fixed permutation of the vocabulary (token t is followed by PERMUTATION[t]), so its
greedy output walks that permutation with clear margins, and a defect that moves the logits moves
the tokens. The tokenizer is a word-level one over the words "t0".."t{V-1}", so text prompts work
too (the server's generate endpoint, transformers.js).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests import zoo_hf

DECODERS = ("gpt2", "gpt_neox", "llama", "mistral", "qwen2", "phi3", "gemma")
VOCABULARY = 100  # what zoo_hf's decoders are built with
TRAIN_STEPS = 120
PERMUTATION = np.random.default_rng(1234).permutation(VOCABULARY)


def training_batch(rng: np.random.Generator, batch: int = 16, length: int = 24) -> torch.Tensor:
    rows = np.empty((batch, length), np.int64)
    rows[:, 0] = rng.integers(0, VOCABULARY, batch)
    for position in range(1, length):
        rows[:, position] = PERMUTATION[rows[:, position - 1]]
    return torch.from_numpy(rows)


def trained(name: str, steps: int = TRAIN_STEPS):
    """zoo_hf's ``name`` decoder after ``steps`` of Adam on the permutation sequences."""
    factory, _ = zoo_hf.ARCHITECTURES[name]
    model = factory()
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
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast
    vocabulary = {f"t{i}": i for i in range(VOCABULARY)}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="t0"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="t0")


def save_folder(name: str, folder: Path, steps: int = TRAIN_STEPS) -> Path:
    model = trained(name, steps)
    # A fixed number of new tokens in every check: no end-of-sequence token inside the vocabulary.
    model.config.eos_token_id = None
    model.generation_config.eos_token_id = None
    model.config.bos_token_id = None
    model.generation_config.bos_token_id = None
    model.generation_config.pad_token_id = None
    model.save_pretrained(folder)
    word_tokenizer().save_pretrained(folder)
    return folder


def prompt(start: int, length: int) -> list[int]:
    """``length`` tokens of the permutation walk from ``start`` (what the model learned to continue)."""
    ids = [start]
    while len(ids) < length:
        ids.append(int(PERMUTATION[ids[-1]]))
    return ids


def transformers_greedy(folder: Path, prompt: list[int], new_tokens: int) -> list[int]:
    """What transformers' own ``generate(do_sample=False)`` makes after ``prompt`` from the folder."""
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False)
    return out[0, len(prompt):].tolist()
