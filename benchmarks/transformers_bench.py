"""Decoders with a cache: modelport's ONNX decoder folders against transformers eager, side by side.

    .venv/bin/python benchmarks/transformers_bench.py [--family gpt2,llama,...] [--new-tokens 64]
        [--prompt 16] [--repeats 3]

For each decoder family, a small config (4 layers, hidden 256, vocabulary 4096, random weights,
no end-of-sequence token so every run makes the same number of tokens) saved with
save_pretrained, then:

- ``export``: ``modelport convert FOLDER OUT --to hf-onnx --no-check`` in this process (seconds,
  the ONNX file's size); the generation check is run once too, and must pass.
- greedy tokens/s at batch 1, the median of ``--repeats`` runs after a warm-up, from the same
  prompt, each making ``--new-tokens`` tokens:
  ``transformers`` eager ``generate(do_sample=False)`` with its own DynamicCache;
  ``onnxruntime``: modelport's cached loop in ONNX Runtime (``modelport.generate``'s loop);
  ``transformers.js``: the folder in transformers.js 4.3.1 in Node (onnxruntime-node), the model
  loaded once. All three must give the same tokens (checked).
- ``torch.onnx.export alone``: what torch's exporter gives when asked directly for the model
  (dynamo, ``input_ids`` and ``attention_mask``): its inputs and outputs, and whether it is a
  usable cached decoder (past inputs and present outputs) at all.

Ratios are against transformers eager on the same machine, in the same run. Goal: ONNX Runtime at
least 2x transformers' tokens/s at batch 1 on CPU. Results go to benchmarks/results/transformers.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results" / "transformers.json"
SMALL = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024,
         "vocab_size": 4096, "max_position_embeddings": 512}
CONFIGS = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {"n_embd": 256, "n_layer": 4, "n_head": 4, "vocab_size": 4096,
                                               "n_positions": 512}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", SMALL),
    "llama": ("LlamaConfig", "LlamaForCausalLM", {**SMALL, "num_key_value_heads": 2}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {**SMALL, "num_key_value_heads": 2}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {**SMALL, "num_key_value_heads": 2}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {**SMALL, "num_key_value_heads": 2, "pad_token_id": 0}),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {**SMALL, "num_key_value_heads": 2, "head_dim": 64}),
}


def build(family: str, folder: Path):
    import torch
    import transformers
    config_name, model_name, settings = CONFIGS[family]
    torch.manual_seed(0)
    model = getattr(transformers, model_name)(getattr(transformers, config_name)(**settings)).eval()
    for config in (model.config, model.generation_config):
        config.eos_token_id = config.bos_token_id = None
    model.generation_config.pad_token_id = None
    model.save_pretrained(folder)
    return model


def transformers_run(model, prompt, new_tokens):
    import torch
    ids = torch.tensor([prompt])
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=0)
    return out[0, len(prompt):].tolist(), time.perf_counter() - start


def median_rate(run, repeats: int, new_tokens: int):
    run()  # warm-up
    times, tokens = [], None
    for _ in range(repeats):
        tokens, seconds = run()
        times.append(seconds)
    return tokens, new_tokens / statistics.median(times)


def torch_export_alone(model, folder: Path) -> dict:
    """torch.onnx.export(dynamo) asked directly for the model: what comes out."""
    import onnx
    import torch
    ids = torch.ones((1, 8), dtype=torch.long)
    path = folder / "torch_alone.onnx"
    try:
        torch.onnx.export(model, (ids,), str(path), kwargs={"attention_mask": torch.ones_like(ids)}, dynamo=True,
                          input_names=["input_ids", "attention_mask"])
    except Exception as exc:  # what a user trying it would see: torch's summary of the cause
        text = str(exc)
        cause = next((line for line in text.splitlines() if line.startswith("<class")), text.splitlines()[0])
        return {"usable": False, "says": "export fails: " + cause.replace("<class '", "").replace("'>", "")[:160]}
    graph = onnx.load(str(path), load_external_data=False).graph
    inputs, outputs = [v.name for v in graph.input], [v.name for v in graph.output]
    takes_past = any("past" in name or "cache" in name for name in inputs)
    returns_present = len(outputs) > 1
    return {"usable": takes_past and returns_present, "inputs": inputs, "outputs": outputs[:4] + (["..."] if len(outputs) > 4 else []),
            "says": ("takes no past: every step recomputes the whole sequence" if not takes_past else "takes a past")}


def bench(family: str, root: Path, prompt_length: int, new_tokens: int, repeats: int) -> dict:
    from modelport.convert import convert
    from modelport.formats.hf_onnx import DecoderFolderSession
    source, out = root / family, root / f"{family}-onnx"
    model = build(family, source)
    start = time.perf_counter()
    convert(source, out, to="hf-onnx", check=False)
    export_seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in (out / "onnx").iterdir())
    checked = convert(source, root / f"{family}-checked", to="hf-onnx")  # the generation check, once
    generation = checked.hops[0].report.generation
    prompt = [(7 * i + 3) % CONFIGS[family][2]["vocab_size"] for i in range(prompt_length)]
    hf_tokens, hf_rate = median_rate(lambda: transformers_run(model, prompt, new_tokens), repeats, new_tokens)
    session = DecoderFolderSession(out)
    ort_tokens, ort_rate = median_rate(lambda: _timed(session.generate(prompt, new_tokens)), repeats, new_tokens)
    js_runs = session.generate_in_transformersjs([prompt] * (repeats + 1), new_tokens)[1:]  # one load, warm-up first
    js_rate = new_tokens / statistics.median(r.seconds for r in js_runs)
    session.close()
    same = hf_tokens == ort_tokens == js_runs[0].tokens
    return {"family": family, "export_s": round(export_seconds, 1), "onnx_mb": round(size / 2**20, 1),
            "check_passed": checked.passed, "check_runtimes": sorted(generation["runtimes"]),
            "transformers_tok_s": round(hf_rate, 1), "onnxruntime_tok_s": round(ort_rate, 1),
            "transformersjs_tok_s": round(js_rate, 1), "ort_vs_transformers": round(ort_rate / hf_rate, 2),
            "js_vs_transformers": round(js_rate / hf_rate, 2), "same_tokens": same,
            "torch_export_alone": torch_export_alone(model, root)}


def _timed(generation):
    return generation.tokens, generation.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default=",".join(CONFIGS))
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="modelport-transformers-bench-") as scratch:
        for family in args.family.split(","):
            print(f"{family} ...", flush=True)
            rows.append(bench(family, Path(scratch), args.prompt, args.new_tokens, args.repeats))
            shutil.rmtree(Path(scratch) / family, ignore_errors=True)
    header = (f"{'family':10} {'export s':>8} {'MB':>6} {'check':>6} {'transformers':>12} {'onnxruntime':>11} "
              f"{'x':>6} {'transformers.js':>15} {'x':>6} {'same':>5}  torch.onnx.export alone")
    print(f"\ngreedy tokens/s at batch 1, {args.prompt}-token prompt, {args.new_tokens} new tokens "
          f"(median of {args.repeats}; x = against transformers eager)")
    print(header)
    for r in rows:
        alone = r["torch_export_alone"]
        print(f"{r['family']:10} {r['export_s']:>8} {r['onnx_mb']:>6} {'pass' if r['check_passed'] else 'FAIL':>6} "
              f"{r['transformers_tok_s']:>12} {r['onnxruntime_tok_s']:>11} {r['ort_vs_transformers']:>6} "
              f"{r['transformersjs_tok_s']:>15} {r['js_vs_transformers']:>6} {str(r['same_tokens']):>5}  "
              f"{'usable' if alone['usable'] else 'not usable'}: {alone['says']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"new_tokens": args.new_tokens, "prompt": args.prompt, "rows": rows}, indent=2) + "\n")
    print(f"\nresults: {RESULTS.relative_to(REPO)}")
    return 0 if all(r["check_passed"] and r["same_tokens"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
