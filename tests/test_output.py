"""What a person reads: no framework start-up noise, and tables that stay readable at 80 columns."""
import subprocess
import sys

from tests.conftest import REPO

NOISE = ("XNNPACK", "cpu_feature_guard", "absl::InitializeLog", "oneDNN", "TF_ENABLE_ONEDNN_OPTS")


def test_tflite_and_keras_commands_print_no_runtime_noise(keras_models):
    for args in (["info", keras_models["cnn_bn.tflite"]],
                 ["validate", keras_models["cnn_bn.keras"], keras_models["cnn_bn.tflite"]]):
        run = subprocess.run([sys.executable, "-m", "modelport.cli", *map(str, args)], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        noisy = [line for line in (run.stdout + run.stderr).splitlines() if any(n in line for n in NOISE)]
        assert not noisy, noisy


def test_long_output_names_break_at_separators():
    from rich.console import Console

    from modelport._render import _parity_table, wrap_name
    from modelport.validate.compare import OutputParity, ParityReport
    name = "StatefulPartitionedCall/functional_model/dense_logits_head/BiasAdd:0"
    assert wrap_name(name, 20).split("\n") == ["StatefulPartitionedCall/", "functional_model/", "dense_logits_head/",
                                               "BiasAdd:0"]
    report = ParityReport("a", "b", 1e-4, 1e-3, 1, [1], outputs=[OutputParity(name, name, [1, 10], [1, 10], 0.0)])
    for width in (80, 120):
        console = Console(width=width, record=True)
        console.print(_parity_table(report, width))
        text = console.export_text()
        assert all(len(line) <= width for line in text.splitlines())
        assert "result" in text and "pass" in text  # no column cut short
        for piece in ("StatefulPartitionedCall/", "functional_model/", "dense_logits_head/", "BiasAdd:0"):
            assert piece in text, text  # whole pieces, never cut inside a word


def test_long_steps_show_elapsed_time_on_a_terminal():
    import time

    from rich.console import Console

    import modelport._console as console_module
    terminal = Console(force_terminal=True, width=80, record=True)
    original, console_module.console = console_module.console, terminal
    try:
        with console_module.Steps().step("Tracing a large model"):
            time.sleep(1.2)
    finally:
        console_module.console = original
    text = terminal.export_text()
    assert "Tracing a large model 1s" in text  # the spinner line counts seconds while it runs
    assert "✓ Tracing a large model (1." in text
