"""`import modelport` and `modelport --help` must not pay for (or require) torch or TensorFlow."""
import subprocess
import sys

HEAVY = ("torch", "tensorflow", "keras", "tf2onnx", "onnxruntime", "onnx")


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(__import__("json").loads(out.strip().splitlines()[-1]))


def test_import_modelport_imports_no_framework():
    loaded = _modules_after("import modelport; modelport.__version__")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_cli_help_imports_no_framework():
    loaded = _modules_after("from modelport.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    loaded = _modules_after("from modelport.cli import main\nmain(['convert', '--help'])")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_console_script_help_runs():
    result = subprocess.run([sys.executable, "-m", "modelport.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for verb in ("info", "convert", "demo"):
        assert verb in result.stdout
