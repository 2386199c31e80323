"""``--input-shape`` as TensorSpecs: ``NAME:1,3,224,224[:dtype]``, dims as names for dynamic ones."""
from __future__ import annotations

from typing import Sequence

from ..errors import UsageError
from ..tensors import TensorSpec, framework_dtype_to_numpy

_SPEC_HINT = "write NAME:1,3,224,224, NAME:1,seq:int64 (a named dim is dynamic) or NAME:1,3,-1,-1 (-1 or ? too)"


def parse_input_specs(texts: Sequence[str] | None) -> list[TensorSpec] | None:
    """``NAME:1,3,224,224[:dtype]`` or ``1,3,224,224`` (positional) -> TensorSpecs.

    A dim written as a name (``seq``), ``-1`` or ``?`` is dynamic: it stays symbolic in the ONNX
    model under that name (``NAME_dimK`` for -1/?) and the parity check runs it at two sizes.
    Dtypes take numpy's and torch's spellings (``float`` is float32, as in torch).
    """
    if not texts:
        return None
    specs = []
    for i, text in enumerate(texts):
        parts = text.split(":")
        if len(parts) == 1:
            name, dims, dtype = f"input_{i}", parts[0], "float32"
        elif len(parts) == 2:
            name, dims = parts
            dtype = "float32"
            if "," not in dims and not dims.strip().isdigit() and ("," in name or name.strip().isdigit()):
                # "1,3,224,224:int64": the first part holds the dims
                name, dims, dtype = f"input_{i}", parts[0], parts[1]
        elif len(parts) == 3:
            name, dims, dtype = parts
        else:
            raise UsageError(f"cannot read --input-shape {text!r}", hint=_SPEC_HINT)
        name = name.strip()
        shape, dim_names = [], []
        for axis, dim in enumerate(d.strip() for d in dims.split(",")):
            if dim in ("?", "-1", "None"):
                shape.append(None)
                dim_names.append(f"{name}_dim{axis}")
            elif dim.isidentifier():
                shape.append(None)
                dim_names.append(dim)
            else:
                try:
                    size = int(dim)
                except ValueError:
                    raise UsageError(f"cannot read --input-shape {text!r}: {dim!r} is not a size", hint=_SPEC_HINT) from None
                if size < 1:
                    raise UsageError(f"--input-shape {text!r}: sizes are positive; -1 or a name marks a dynamic dim")
                shape.append(size)
                dim_names.append(None)
        try:
            numpy_dtype = framework_dtype_to_numpy(dtype.strip())
        except TypeError:
            raise UsageError(f"--input-shape {text!r}: unknown dtype {dtype!r}",
                             hint="e.g. float32, float16, int64, int32, bool") from None
        specs.append(TensorSpec(name, tuple(shape), numpy_dtype,
                                dim_names=tuple(dim_names) if any(dim_names) else None))
    return specs
