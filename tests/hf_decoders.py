"""Each decoder family of tests/zoo_hf.py, lightly trained and saved as a Hugging Face folder with a
tokenizer (modelport/demo_decoder.py says why and how), and transformers' own greedy decoding as
the reference the tests hold converted folders to."""
from __future__ import annotations

from pathlib import Path

import torch

from modelport import demo_decoder
from tests import zoo_hf

DECODERS = ("gpt2", "gpt_neox", "llama", "mistral", "qwen2", "phi3", "gemma")
# Encoder-decoders with their language-model heads, at zoo_hf's configs.
SEQ2SEQ = {
    "t5": ("T5Config", "T5ForConditionalGeneration", {"vocab_size": 100, "d_model": 32, "d_kv": 8, "d_ff": 64,
                                                      "num_layers": 2, "num_heads": 4, "decoder_start_token_id": 0}),
    "bart": ("BartConfig", "BartForConditionalGeneration", {
        "vocab_size": 100, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
        "decoder_attention_heads": 4, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "max_position_embeddings": 64}),
}
PERMUTATION = demo_decoder.PERMUTATION
prompt = demo_decoder.walk


def save_folder(name: str, folder: Path) -> Path:
    if name in SEQ2SEQ:
        config_name, model_name, settings = SEQ2SEQ[name]
        model = zoo_hf._build(config_name, model_name, **settings)
        return demo_decoder.save_folder(demo_decoder.train_seq2seq(model), folder)
    factory, _ = zoo_hf.ARCHITECTURES[name]
    model = factory()
    assert model.config.vocab_size == demo_decoder.VOCABULARY, name
    return demo_decoder.save_folder(demo_decoder.train(model), folder)


def transformers_greedy(folder: Path, prompt: list[int], new_tokens: int) -> list[int]:
    """What transformers' own ``generate(do_sample=False)`` makes after ``prompt`` from the folder."""
    import transformers
    config = transformers.AutoConfig.from_pretrained(folder)
    auto = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModelForCausalLM
    model = auto.from_pretrained(folder).eval()
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False,
                             forced_bos_token_id=None, forced_eos_token_id=None, no_repeat_ngram_size=0)
    # a decoder's sequence starts with the prompt, an encoder-decoder's with its decoder start token
    return out[0, 1 if config.is_encoder_decoder else len(prompt):].tolist()
