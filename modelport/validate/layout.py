"""Channels-first vs channels-last: telling them apart from shapes, and moving data between them."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import UsageError

LAYOUTS = ("NCHW", "NHWC")


def to_channels_last(rank: int) -> tuple[int, ...]:
    """Axes permutation NC... -> N...C for a tensor of ``rank`` dims."""
    return (0, *range(2, rank), 1)


def to_channels_first(rank: int) -> tuple[int, ...]:
    """Axes permutation N...C -> NC... for a tensor of ``rank`` dims."""
    return (0, rank - 1, *range(1, rank - 1))


def _fits(shape: Sequence[int | None], target: Sequence[int | None]) -> bool:
    return len(shape) == len(target) and all(a is None or b is None or a == b for a, b in zip(shape, target))


def layout_permutation(reference: Sequence[int | None] | None, candidate: Sequence[int | None] | None,
                       explicit: str | None = None) -> tuple[int, ...] | None:
    """The permutation that takes a reference-layout tensor to the candidate's layout, or None.

    ``explicit`` ("NCHW:NHWC" = reference NCHW, candidate NHWC) wins over guessing. A guess is
    made only when exactly one of identity / channels-last / channels-first fits the shapes.
    """
    if reference is None or candidate is None or len(reference) != len(candidate) or len(reference) < 3:
        return None
    rank = len(reference)
    if explicit:
        ref_layout, _, cand_layout = explicit.upper().partition(":")
        if ref_layout not in LAYOUTS or cand_layout not in LAYOUTS:
            raise UsageError(f"--input-layout {explicit!r}: write REFERENCE:CANDIDATE, e.g. NCHW:NHWC")
        if ref_layout == cand_layout:
            return None
        permutation = to_channels_last(rank) if ref_layout == "NCHW" else to_channels_first(rank)
        if not _fits(tuple(reference[i] for i in permutation), candidate) and _fits(reference, candidate):
            return None  # an input the layout change left alone (a sequence beside the image)
        return permutation
    options = {None: tuple(reference), to_channels_last(rank): tuple(reference[i] for i in to_channels_last(rank)),
               to_channels_first(rank): tuple(reference[i] for i in to_channels_first(rank))}
    fitting = [perm for perm, shape in options.items() if _fits(shape, candidate)]
    if None in fitting:
        return None  # same layout fits: never transpose on a guess
    return fitting[0] if len(fitting) == 1 else None


def output_permutation(reference: np.ndarray, candidate: np.ndarray) -> tuple[int, ...] | None:
    """A channels-first/last permutation taking ``candidate`` to ``reference``'s shape, if exactly one fits."""
    if reference.ndim != candidate.ndim or reference.ndim < 3 or reference.shape == candidate.shape:
        return None
    rank = reference.ndim
    fitting = [p for p in (to_channels_last(rank), to_channels_first(rank))
               if tuple(candidate.shape[i] for i in p) == reference.shape]
    return fitting[0] if len(fitting) == 1 else None
