"""Each decoder family of tests/zoo_hf.py, lightly trained and saved as a Hugging Face folder with a
tokenizer (modelport/demo_decoder.py says why and how), and transformers' own greedy decoding as
the reference the tests hold converted folders to."""
from __future__ import annotations

from pathlib import Path

import torch

from modelport import demo_decoder
from tests import zoo_hf

DECODERS = ("gpt2", "gpt_neox", "llama", "mistral", "qwen2", "phi3", "gemma")
PERMUTATION = demo_decoder.PERMUTATION
prompt = demo_decoder.walk


def save_folder(name: str, folder: Path, steps: int = demo_decoder.TRAIN_STEPS) -> Path:
    factory, _ = zoo_hf.ARCHITECTURES[name]
    model = factory()
    assert model.config.vocab_size == demo_decoder.VOCABULARY, name
    return demo_decoder.save_folder(demo_decoder.train(model, steps), folder)


def transformers_greedy(folder: Path, prompt: list[int], new_tokens: int) -> list[int]:
    """What transformers' own ``generate(do_sample=False)`` makes after ``prompt`` from the folder."""
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False)
    return out[0, len(prompt):].tolist()
