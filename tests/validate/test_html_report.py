"""The HTML report is one self-contained file that a real browser renders with its table and plots."""
import os
import re
import shutil
import subprocess

import numpy as np
import onnx
import pytest
import torch

from tests import zoo_torch
from tests.validate.onnx_edits import perturb_weight

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Debian's chromium (.ci/run); elsewhere the browser check runs when it is present.
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="Debian chromium is not installed (apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def failing_report(tmp_path_factory):
    """A real failing comparison (one conv weight perturbed), rendered with --localize."""
    from modelport.cli import main
    folder = tmp_path_factory.mktemp("html")
    reference = folder / "cnn.onnx"
    torch.onnx.export(zoo_torch.small_cnn(), (torch.rand(2, 3, 16, 16),), str(reference), dynamo=True,
                      verbose=False, dynamic_shapes=({0: torch.export.Dim("batch")},))
    edited, node = perturb_weight(onnx.load(str(reference)), "Conv", n=1)
    candidate = folder / "perturbed.onnx"
    onnx.save(edited, str(candidate))
    report = folder / "report.html"
    assert main(["validate", str(reference), str(candidate), "--localize", "--report", str(report)]) == 1
    return report, node


def test_report_is_self_contained(failing_report):
    report, node = failing_report
    text = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the report must not fetch anything"
    assert text.count("data:image/png;base64,") == 1  # one output, one figure (histogram + scatter)
    assert "FAILED" in text and node in text and "DIVERGES" in text


def _chromium(*args, cwd):
    profile = cwd / "profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], cwd=cwd,
                          capture_output=True, timeout=120)


@needs_chromium
def test_report_renders_in_headless_chromium(failing_report, tmp_path):
    assert CHROMIUM, "CI must have chromium: .ci/run installs it"
    report, node = failing_report
    dom = _chromium("--dump-dom", report.as_uri(), cwd=tmp_path).stdout.decode()
    assert '<table id="outputs">' in dom and "max abs" in dom and node in dom
    shot = tmp_path / "shot.png"
    _chromium("--window-size=1200,1600", f"--screenshot={shot}", report.as_uri(), cwd=tmp_path)
    import matplotlib.image
    pixels = (matplotlib.image.imread(str(shot))[..., :3] * 255).astype(int)

    def count(rgb):
        return int(np.all(np.abs(pixels - np.array(rgb)) <= 12, axis=-1).sum())
    assert count((0xCF, 0x22, 0x2E)) > 200, "the red FAILED badge is drawn"
    assert count((0x09, 0x69, 0xDA)) > 500, "the error histogram is drawn"
    assert count((0xFF, 0xEB, 0xE9)) > 2000, "the failing table row is highlighted"
