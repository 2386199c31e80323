"""Triton's system shared memory extension: a client on the same machine registers a POSIX shared
memory object (``shm_open``'s key, an offset and a size, as ``tritonclient.utils.shared_memory``
makes them) and then names it in an input's or a requested output's parameters
(``shared_memory_region``, ``shared_memory_byte_size``, ``shared_memory_offset``): the tensor's
bytes are read from, or written to, the region instead of travelling in the request.

Off unless the server is started with ``--allow-client-shm`` (as Triton's ``--allow-client-shm``):
a registered region lets clients make the server read and write that memory. Even then a region must
be a regular file directly in ``/dev/shm`` (the key is ``/NAME``, no other slash, links not
followed), owned by the user the server runs as, and large enough for the offset and size
registered; every tensor's offset and size are checked against its region before a model runs.
CUDA shared memory needs a GPU: its calls are answered as not implemented.
"""
from __future__ import annotations

import mmap
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ServeError

SHM_ROOT = Path("/dev/shm")
KEY = re.compile(r"^/[^/\0]{1,250}$")
REGION = "shared_memory_region"
OFFSET = "shared_memory_offset"
BYTE_SIZE = "shared_memory_byte_size"
PARAMETERS = (REGION, OFFSET, BYTE_SIZE)
CUDA_UNSUPPORTED = ("CUDA shared memory is not supported: this server runs on the CPU; use system shared memory "
                    "(tritonclient.utils.shared_memory) instead")


@dataclass
class Region:
    name: str
    key: str
    offset: int
    byte_size: int
    memory: mmap.mmap = field(repr=False)

    def status(self) -> dict:
        return {"name": self.name, "key": self.key, "offset": self.offset, "byte_size": self.byte_size}


@dataclass(frozen=True)
class Placement:
    """Where one tensor lies: a region, and the offset and size within it."""
    region: Region
    offset: int
    byte_size: int

    def read(self) -> bytes:
        start = self.region.offset + self.offset
        return bytes(self.region.memory[start:start + self.byte_size])

    def write(self, data: bytes) -> None:
        start = self.region.offset + self.offset
        self.region.memory[start:start + len(data)] = data


class SystemSharedMemory:
    """The registered regions, by name."""

    def __init__(self, allowed: bool):
        self.allowed = allowed
        self.regions: dict[str, Region] = {}

    def _require_allowed(self) -> None:
        if not self.allowed:
            raise ServeError("client shared memory is off on this server; start it with --allow-client-shm to let "
                             "clients on this machine register shared memory regions", status=403)

    def register(self, name: str, key: str, offset: int, byte_size: int) -> None:
        self._require_allowed()
        if not isinstance(name, str) or not name:
            raise ServeError("a shared memory region needs a name")
        if name in self.regions:
            raise ServeError(f"shared memory region {name!r} is already registered; unregister it first")
        if not isinstance(key, str) or not KEY.match(key):
            raise ServeError(f"shared memory key {key!r} is not a POSIX shared memory name ('/NAME', one slash, as "
                             "shm_open takes it); regions live in /dev/shm only")
        for label, value in (("offset", offset), ("byte_size", byte_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ServeError(f"shared memory region {name!r}: {label} must be a byte count, got {value!r}")
        if byte_size == 0:
            raise ServeError(f"shared memory region {name!r}: byte_size must be positive")
        path = SHM_ROOT / key[1:]
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise ServeError(f"shared memory region {name!r}: no shared memory object {key!r} (create it with "
                             "shm_open / tritonclient.utils.shared_memory first)") from None
        except OSError as exc:
            raise ServeError(f"shared memory region {name!r}: cannot open {key!r}: {exc.strerror}") from None
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise ServeError(f"shared memory region {name!r}: {key!r} is not a shared memory object")
            if info.st_uid != os.geteuid():
                raise ServeError(f"shared memory region {name!r}: {key!r} belongs to another user (uid "
                                 f"{info.st_uid}); the server only maps memory of its own user", status=403)
            if offset + byte_size > info.st_size:
                raise ServeError(f"shared memory region {name!r}: offset {offset} + byte_size {byte_size} runs past "
                                 f"the end of {key!r} ({info.st_size} bytes)")
            memory = mmap.mmap(descriptor, info.st_size)
        finally:
            os.close(descriptor)
        self.regions[name] = Region(name, key, offset, byte_size, memory)

    def unregister(self, name: str = "") -> None:
        self._require_allowed()
        if name and name not in self.regions:
            raise ServeError(f"no shared memory region named {name!r} is registered")
        for chosen in ([name] if name else list(self.regions)):
            self.regions.pop(chosen).memory.close()

    def status(self, name: str = "") -> list[dict]:
        if name and name not in self.regions:
            raise ServeError(f"no shared memory region named {name!r} is registered", status=404)
        return [region.status() for region in self.regions.values() if not name or region.name == name]

    def placement(self, tensor: str, parameters: dict) -> Placement | None:
        """Where the tensor's parameters put it, checked against its region; None when they do not
        name a region."""
        if REGION not in parameters and BYTE_SIZE not in parameters:
            return None
        name, size, offset = parameters.get(REGION), parameters.get(BYTE_SIZE), parameters.get(OFFSET, 0)
        if name is None or size is None:
            raise ServeError(f"tensor {tensor!r}: shared memory needs both {REGION} and {BYTE_SIZE}")
        region = self.regions.get(name)
        if region is None:
            raise ServeError(f"tensor {tensor!r}: no shared memory region named {name!r} is registered")
        for label, value in ((BYTE_SIZE, size), (OFFSET, offset)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ServeError(f"tensor {tensor!r}: {label} must be a byte count, got {value!r}")
        if offset + size > region.byte_size:
            raise ServeError(f"tensor {tensor!r}: {OFFSET} {offset} + {BYTE_SIZE} {size} runs past the end of region "
                             f"{name!r} ({region.byte_size} bytes)")
        return Placement(region, offset, size)

    def close(self) -> None:
        for region in self.regions.values():
            region.memory.close()
        self.regions.clear()
