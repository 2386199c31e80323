"""The Python API as a user meets it in a REPL or an IDE: signatures, help and dir()."""
import inspect
import pydoc

import modelport


def test_lazy_entry_points_keep_their_signatures_and_docs():
    convert = inspect.signature(modelport.convert)
    assert list(convert.parameters)[:2] == ["source", "destination"] and "check" in convert.parameters
    validate = inspect.signature(modelport.validate)
    assert list(validate.parameters)[:2] == ["reference", "candidate"] and "localize" in validate.parameters
    assert "check every hop for numerical parity" in pydoc.render_doc(modelport.convert, renderer=pydoc.plaintext)
    assert "Prove (or disprove) numerical parity" in pydoc.render_doc(modelport.validate, renderer=pydoc.plaintext)
    assert inspect.signature(modelport.open_model).parameters["path"]


def test_dir_lists_the_public_api():
    names = dir(modelport)
    assert {"open_model", "convert", "validate", "compare_sessions", "ParityReport", "TensorSpec", "__version__"} <= set(names)
    assert "annotations" not in names
