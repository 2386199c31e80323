"""Side venvs for the peers a benchmark compares against (never modelport's own venv)."""
from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence


def ensure_peer_venv(venv: Path, packages: Sequence[str], then: Callable[[Path], None] | None = None) -> Path:
    """``venv`` made once, with ``packages`` installed ``--no-deps``; modelport's packages (torch,
    onnx, jax, numpy, ...) are seen through a .pth file after the peer's own, so both sides run the
    same framework. ``then(site_packages)`` adds what pip cannot. Returns the venv's python."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing {', '.join(packages)} into {venv} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        peer_site = next((venv / "lib").glob("python3*/site-packages"))
        (peer_site / "zz_modelport_venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *packages], check=True)
        if then is not None:
            then(peer_site)
    return python
