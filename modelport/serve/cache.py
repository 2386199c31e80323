"""Triton's response cache: a model whose config says ``response_cache { enable: true }`` answers a
request it has answered before from memory, without running.

The key is the model, its version and every input's name, datatype, shape and bytes (a SHA-256 of
them, so equal requests from different clients and protocols meet); what is kept is every output
of the model, so a later request for other outputs, or for classification labels, is answered from
the same entry. One cache serves the whole server (``--cache-size-mb``), least recently used
entries going first when a new one does not fit; an answer larger than the whole cache is not kept.
A model loaded or unloaded again loses its entries (its file may have changed under the same
version). Hits and misses are counted in the model's statistics (``cache_hit``, ``cache_miss``) and
on /metrics (``nv_cache_num_hits_per_model`` ...), as Triton counts them.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Mapping

import numpy as np


def request_key(model: str, version: str, feeds: Mapping[str, np.ndarray]) -> tuple[str, str, str]:
    digest = hashlib.sha256()
    for name in sorted(feeds):
        value = np.ascontiguousarray(feeds[name])
        digest.update(f"{len(name)}:{name}|{value.dtype.str}|{value.shape}|".encode())
        if value.dtype == object:  # BYTES tensors: each element's length, then its bytes
            for item in value.reshape(-1):
                item = item if isinstance(item, bytes) else str(item).encode()
                digest.update(len(item).to_bytes(8, "little") + item)
        else:
            digest.update(value.tobytes())
    return model, version, digest.hexdigest()


class ResponseCache:
    """Outputs by request key, least recently used first out, within ``capacity`` bytes."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.used = 0
        self._entries: OrderedDict[tuple, tuple[dict[str, np.ndarray], int]] = OrderedDict()

    def get(self, key: tuple) -> dict[str, np.ndarray] | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: tuple, outputs: Mapping[str, np.ndarray]) -> None:
        size = sum(_nbytes(value) for value in outputs.values())
        if size > self.capacity or key in self._entries:
            return
        while self.used + size > self.capacity:
            _, (_, freed) = self._entries.popitem(last=False)
            self.used -= freed
        # Copies: the batcher's arrays may be views into a merged batch that the caller keeps using.
        self._entries[key] = ({name: np.array(value, copy=True) for name, value in outputs.items()}, size)
        self.used += size

    def forget(self, model: str) -> None:
        for key in [k for k in self._entries if k[0] == model]:
            self.used -= self._entries.pop(key)[1]

    def __len__(self) -> int:
        return len(self._entries)


def _nbytes(value: np.ndarray) -> int:
    if value.dtype == object:
        return sum(len(item) if isinstance(item, bytes) else len(str(item)) for item in value.reshape(-1)) + value.size * 8
    return value.nbytes
