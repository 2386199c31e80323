"""Bad input exits 2 with a clear message and writes nothing; a parity failure exits 1 and keeps the artifact."""
import json
import subprocess
import sys

import pytest
import torch

from modelport.convert import EDGES
from tests import zoo_torch
from tests.conftest import listing


def _assert_refused(result, *phrases):
    assert result.code == 2, (result.code, result.err)
    for phrase in phrases:
        assert phrase in result.err, result.err
    assert "Traceback" not in result.err


def test_missing_file(cli, tmp_path):
    result = cli("convert", tmp_path / "nope.keras", tmp_path / "out.onnx")
    _assert_refused(result, "no such file", "nope.keras")
    assert listing(tmp_path) == []


def test_content_does_not_match_suffix(cli, tmp_path):
    fake = tmp_path / "model.keras"
    fake.write_text("<html><head><title>404 Not Found</title></head></html>")
    before = listing(tmp_path)
    result = cli("convert", fake, tmp_path / "out.onnx")
    _assert_refused(result, "'.keras'", "HTML")
    assert listing(tmp_path) == before


@pytest.mark.parametrize("name", ["cnn_bn.tflite", "two_io.keras"])
def test_truncated_model(cli, keras_models, tmp_path, name):
    data = keras_models[name].read_bytes()
    broken = tmp_path / name
    broken.write_bytes(data[: len(data) // 2])
    before = listing(tmp_path)
    result = cli("convert", broken, tmp_path / "out.onnx")
    _assert_refused(result, "truncated")
    assert listing(tmp_path) == before


def test_truncated_onnx_info(cli, tmp_path):
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(zoo_torch.small_cnn(), (torch.rand(1, 3, 8, 8),), str(path), dynamo=False)
    path.write_bytes(path.read_bytes()[:2000])
    _assert_refused(cli("info", path), "not a valid ONNX model")


def test_truncated_torchscript(cli, tmp_path):
    path = tmp_path / "cnn.pt"
    torch.jit.script(zoo_torch.small_cnn()).save(str(path))
    path.write_bytes(path.read_bytes()[:3000])
    before = listing(tmp_path)
    _assert_refused(cli("convert", path, tmp_path / "o.onnx", "--input-shape", "1,3,8,8"), "truncated")
    assert listing(tmp_path) == before


@pytest.mark.parametrize("target,phrase", [("out.xyz", "cannot tell the target format"),
                                           ("out.onnx --to coreml", "unknown format 'coreml'")])
def test_unknown_target_format(cli, keras_models, tmp_path, target, phrase):
    dst, *extra = target.split()
    result = cli("convert", keras_models["two_io.keras"], tmp_path / dst, *extra)
    _assert_refused(result, phrase)
    assert listing(tmp_path) == []


def test_no_conversion_path(cli, tmp_path):
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(zoo_torch.small_cnn(), (torch.rand(1, 3, 8, 8),), str(path), dynamo=False)
    _assert_refused(cli("convert", path, tmp_path / "cnn.keras"), "no conversion path from onnx to keras")


def test_torch_op_without_onnx_translation_is_named_and_located(cli, tmp_path):
    dst = tmp_path / "u.onnx"
    dst.write_bytes(b"previous good artifact")
    result = cli("convert", "tests.zoo_torch:unsupported_net", dst, "--input-shape", "x:2,4")
    _assert_refused(result, "'aten::linalg_eigvals'", "module 'eigen' (EigenHead)", "zoo_torch.py:")
    assert dst.read_bytes() == b"previous good artifact"
    assert listing(tmp_path) == ["u.onnx"]


def test_tensorflow_op_without_onnx_translation(cli, tmp_path):
    import tensorflow as tf

    class Eigen(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3, 3], tf.float32, name="x")])
        def serve(self, x):
            values, _ = tf.linalg.eigh(x + tf.transpose(x, [0, 2, 1]))
            return {"values": values}

    module = Eigen()
    source = tmp_path / "eigen_savedmodel"
    tf.saved_model.save(module, str(source), signatures={"serving_default": module.serve})
    before = listing(tmp_path)
    result = cli("convert", source, tmp_path / "eigen.onnx")
    _assert_refused(result, "'SelfAdjointEigV2'", "SelfAdjointEigV2'")
    assert listing(tmp_path) == before


def test_pickled_module_refused_without_trust(cli, tmp_path):
    path = tmp_path / "full.pt"
    torch.save(zoo_torch.small_cnn(), path)
    before = listing(tmp_path)
    result = cli("convert", path, tmp_path / "full.onnx", "--input-shape", "1,3,8,8")
    _assert_refused(result, "pickled", "--trust-pickle")
    assert listing(tmp_path) == before
    trusted = cli("convert", path, tmp_path / "full.onnx", "--input-shape", "1,3,8,8", "--trust-pickle")
    assert trusted.code == 0, trusted.err


def test_missing_input_shape_says_what_to_pass(cli, tmp_path):
    result = cli("convert", "tests.zoo_torch:small_cnn", tmp_path / "cnn.onnx")
    _assert_refused(result, "--input-shape", "image")
    assert listing(tmp_path) == []


def test_interrupted_conversion_leaves_nothing(cli, tmp_path, monkeypatch):
    edge = EDGES[("pytorch", "onnx")]

    def interrupted(session, dst, options):
        dst.write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setitem(EDGES, ("pytorch", "onnx"), edge.__class__(edge.src, edge.dst, interrupted, edge.description))
    dst = tmp_path / "cnn.onnx"
    dst.write_bytes(b"previous good artifact")
    result = cli("convert", "tests.zoo_torch:small_cnn", dst, "--input-shape", "1,3,8,8")
    assert result.code == 130
    assert dst.read_bytes() == b"previous good artifact"
    assert listing(tmp_path) == ["cnn.onnx"]


def test_parity_failure_exits_1_and_keeps_artifact(cli, tmp_path):
    dst, report = tmp_path / "t.onnx", tmp_path / "report.json"
    # ONNX Runtime and torch differ by ~1e-7 on this model: zero tolerance must fail, honestly.
    result = cli("convert", "tests.zoo_torch:tiny_transformer", dst, "--input-shape", "1,7,32",
                 "--atol", "0", "--rtol", "0", "--report", report)
    assert result.code == 1, result.err
    assert "parity check failed" in result.err and "beyond tolerance" in result.err
    assert "artifact was kept" in result.err
    assert dst.is_file()
    data = json.loads(report.read_text())
    assert data["passed"] is False
    assert {o["candidate_name"] for o in data["hops"][0]["parity"]["outputs"] if not o["passed"]} == {"logits", "hidden"}


def test_parity_failure_does_not_replace_an_existing_model(cli, tmp_path):
    dst = tmp_path / "t.onnx"
    dst.write_bytes(b"previous good artifact")
    result = cli("convert", "tests.zoo_torch:tiny_transformer", dst, "--input-shape", "1,7,32", "--atol", "0", "--rtol", "0")
    assert result.code == 1
    assert dst.read_bytes() == b"previous good artifact"
    failed = tmp_path / "t.parity-failed.onnx"
    assert failed.is_file() and str(failed) in result.err and "was left as it was" in result.err


def test_no_check_skips_parity(cli, tmp_path):
    result = cli("convert", "tests.zoo_torch:small_cnn", tmp_path / "c.onnx", "--input-shape", "1,3,8,8",
                 "--no-check", "--json")
    assert result.code == 0
    assert result.json()["checked"] is False and result.json()["hops"][0]["parity"] is None


def test_debug_shows_traceback(cli, tmp_path):
    result = cli("--debug", "convert", tmp_path / "nope.onnx", tmp_path / "o.onnx")
    assert result.code == 2 and "Traceback" in result.err


def test_console_script_exit_code(tmp_path):
    fake = tmp_path / "m.tflite"
    fake.write_text("not a model")
    run = subprocess.run([sys.executable, "-m", "modelport.cli", "info", str(fake)], capture_output=True, text=True)
    assert run.returncode == 2
    assert "m.tflite" in run.stderr and "Traceback" not in run.stderr



def test_json_mode_reports_errors_as_json(cli, tmp_path):
    result = cli("convert", tmp_path / "nope.onnx", tmp_path / "o.onnx", "--json")
    assert result.code == 2
    error = result.json()["error"]
    assert error["type"] == "InvalidModelError" and "no such file" in error["message"] and error["exit_code"] == 2


@pytest.mark.parametrize("args,says", [
    ([], "Usage: modelport"),
    (["nosuchcmd"], "No such command 'nosuchcmd'"),
    (["serve", "m.onnx", "--http-port", "x"], "Invalid value for '--http-port'"),
    (["conver", "a", "b"], "Did you mean 'convert'"),
    (["convert", "x.keras"], "Missing argument 'dst'"),
    (["convert", "--bogus", "a", "b"], "No such option: --bogus"),
    (["validate", "a.onnx", "--samples", "zero"], "Invalid value for '--samples'"),
])
def test_usage_errors_exit_2_with_the_usage_line(cli, args, says):
    result = cli(*args)
    assert result.code == 2, (result.code, result.err)
    assert says in result.err and "internal error" not in result.err
    if args:
        assert "Usage: modelport" in result.err
    as_json = cli(*args, "--json") if args else None
    if as_json is not None:
        assert as_json.code == 2 and as_json.json()["error"]["exit_code"] == 2


def test_version(cli):
    from modelport import __version__
    result = cli("--version")
    assert result.code == 0 and result.out.strip() == f"modelport {__version__}"


def test_console_script_usage_error_exit_code():
    run = subprocess.run([sys.executable, "-m", "modelport.cli", "nosuchcmd"], capture_output=True, text=True)
    assert run.returncode == 2 and "No such command" in run.stderr


# SIGINT: 130, or -2 when the interpreter re-delivers the signal at exit (it does so for a
# KeyboardInterrupt it sees last); either way the process says it was interrupted and cleaned up.
@pytest.mark.parametrize("signal_name,codes", [("SIGTERM", (143,)), ("SIGINT", (130, -2))])
def test_signal_during_conversion_leaves_nothing(tmp_path, signal_name, codes):
    """A real signal to a real process while the exporter runs: the staged output is removed."""
    import signal
    import time
    from tests.conftest import REPO
    dst = tmp_path / "resnet18.onnx"
    process = subprocess.Popen([sys.executable, "-m", "modelport.cli", "convert", "tests.zoo_torch:resnet18", str(dst),
                                "--input-shape", "image:1,3,224,224"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".resnet18.onnx.*.partial")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert list(tmp_path.glob(".resnet18.onnx.*.partial")), "the conversion never staged its output"
    time.sleep(0.5)  # inside the exporter
    process.send_signal(getattr(signal, signal_name))
    _, err = process.communicate(timeout=120)
    assert process.returncode in codes, err
    assert "nothing was written" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_an_interrupt_swallowed_by_a_library_still_writes_nothing(tmp_path, signal_name):
    """Exporters catch broad exceptions and carry on; the remembered signal still stops the commit."""
    import os
    import signal
    import time
    from modelport._atomic import atomic_output
    from modelport._signals import Terminated, remembered_interrupts
    expected = Terminated if signal_name == "SIGTERM" else KeyboardInterrupt
    dst = tmp_path / "out.bin"
    with remembered_interrupts(), pytest.raises(expected):
        with atomic_output(dst) as staged:
            staged.write_bytes(b"half")
            try:
                os.kill(os.getpid(), getattr(signal, signal_name))
                time.sleep(5)
            except BaseException:  # noqa: B036 - what the library under us does
                pass
    assert list(tmp_path.iterdir()) == []
