"""The generation check: greedy decoding from several prompts must give the same tokens.

One forward pass proves the graph at an empty past; a decoder is used through its cache, step
after step. Both models decode greedily from the same prompts (the reference with its own loop,
e.g. transformers' ``generate``; the candidate with its own), and the comparison asks:

- the logits each token was picked from agree, step by step, within the fp32 rule (these steps
  run with a past of at least the prompt's length);
- the tokens are the same. Where they part, the step is a *tie* when the reference's own margin
  between its pick and the candidate's is within the tolerance of its logits: rounding may pick
  either, so that is reported, not failed (the logits up to there must still agree). Any other
  divergence fails the check.

Sessions take part when they have ``generate(prompt_ids, max_new_tokens) -> Generation``; a
candidate that users also load elsewhere (a decoder folder in transformers.js) names those
runtimes in ``other_runtimes()``, and each is held to the same tokens.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from .compare import measure
from .tolerances import Tolerance

DEFAULT_NEW_TOKENS = 32
PROMPT_LENGTHS = (2, 5, 9)  # every later step runs with a past of at least two positions


@dataclass
class PromptResult:
    prompt: list[int]
    reference_tokens: list[int]
    candidate_tokens: list[int]
    first_divergence: int | None = None  # the step where the tokens part, if they do
    tie: bool = False  # that step was a tie in the reference's logits
    max_abs: float | None = None  # worst logits error over the steps both took on the same prefix
    scale: float | None = None
    reference_tokens_per_s: float | None = None
    candidate_tokens_per_s: float | None = None
    problems: list[str] = field(default_factory=list)


def can_generate(session) -> bool:
    """Whether the session decodes token by token (a session may say so per model: ``generates``)."""
    return callable(getattr(session, "generate", None)) and bool(getattr(session, "generates", True))


def prompts_for(vocabulary: int, seed: int, lengths: Sequence[int] = PROMPT_LENGTHS) -> list[list[int]]:
    """Prompts of random token ids (seeded), one per length."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocabulary, size=length).tolist() for length in lengths]


def generate_all(reference, candidate, prompts: Sequence[Sequence[int]],
                 max_new_tokens: int = DEFAULT_NEW_TOKENS) -> tuple[list, dict[str, list | str], dict[str, str]]:
    """The reference's generations; per candidate runtime its generations (or why it failed to
    run): the candidate's own loop under its format name, then each of ``candidate.other_runtimes()``;
    and the runtimes not installed here, with why (``other_runtimes`` gives those as a reason)."""
    reference_runs = [reference.generate(list(p), max_new_tokens) for p in prompts]
    own = getattr(candidate, "runtime_name", candidate.format_name)
    runs: dict[str, list | str] = {own: [candidate.generate(list(p), max_new_tokens) for p in prompts]}
    others = candidate.other_runtimes() if callable(getattr(candidate, "other_runtimes", None)) else {}
    skipped = {name: reason for name, reason in others.items() if isinstance(reason, str)}
    for name, generate_many in others.items():
        if name in skipped:
            continue
        try:
            runs[name] = generate_many([list(p) for p in prompts], max_new_tokens)
        except Exception as failed:  # the folder does not run where users run it: a failed check
            runs[name] = getattr(failed, "message", None) or str(failed)
    return reference_runs, runs, skipped


def compare_generation(prompts: Sequence[Sequence[int]], reference_runs, candidate_runs,
                       tolerance: Tolerance) -> list[PromptResult]:
    """Prompt by prompt: the tokens, where they part (a tie or not), and the step logits where the
    candidate gives them back."""
    results = []
    for prompt, ref, cand in zip(prompts, reference_runs, candidate_runs):
        result = PromptResult(list(prompt), list(ref.tokens), list(cand.tokens),
                              reference_tokens_per_s=round(ref.tokens_per_second, 1),
                              candidate_tokens_per_s=round(cand.tokens_per_second, 1))
        steps = min(len(ref.tokens), len(cand.tokens))
        parted = next((k for k in range(steps) if ref.tokens[k] != cand.tokens[k]), None)
        compared = steps if parted is None else parted + 1  # the parting step's logits saw the same prefix
        if compared and cand.step_logits.size:
            ref_logits, cand_logits = ref.step_logits[:compared], cand.step_logits[:compared]
            measured = measure(ref_logits, cand_logits, tolerance)
            result.max_abs = measured.max_abs
            result.scale = float(np.abs(ref_logits).max())
            if measured.beyond:
                result.problems.append(f"logits differ beyond tolerance at {measured.beyond} of "
                                       f"{measured.size} values over {compared} step(s) "
                                       f"(max abs error {measured.max_abs:.3g} at scale {result.scale:.3g})")
        if parted is not None:
            result.first_divergence = parted
            row = ref.step_logits[parted]
            margin = float(row[ref.tokens[parted]] - row[cand.tokens[parted]])
            allowed = float(tolerance.allowed(np.abs(row)))
            result.tie = abs(margin) <= allowed
            if margin < -allowed:  # the reference's own logits prefer the candidate's token
                result.problems.append(f"tokens part at step {parted}: the reference picked {ref.tokens[parted]}, "
                                       f"which its logits rank below {cand.tokens[parted]} by {-margin:.3g}: its "
                                       "decoding is not plain greedy (a logits processor of its generation config)")
            elif not result.tie:
                result.problems.append(f"tokens part at step {parted}: reference {ref.tokens[parted]}, candidate "
                                       f"{cand.tokens[parted]} (the reference prefers its token by {margin:.3g}, "
                                       f"beyond the {allowed:.3g} rounding allows)")
        elif len(ref.tokens) != len(cand.tokens):
            result.problems.append(f"the reference made {len(ref.tokens)} tokens, the candidate {len(cand.tokens)}")
        results.append(result)
    return results


def summarize(results: Sequence[PromptResult]) -> dict[str, Any]:
    """One runtime's record in a ParityReport: per prompt, and whether the tokens matched."""
    return {"prompts": [asdict(r) for r in results],
            "identical": all(r.first_divergence is None and not r.problems for r in results),
            "ties": sum(r.tie for r in results),
            "passed": not any(r.problems for r in results)}
