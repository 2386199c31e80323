"""PyTorch models: TorchScript (.pt/.pth), ExportedProgram (.pt2), and ``package.module:factory``
with a ``state_dict`` loaded by ``torch.load(weights_only=True)``.

A file holding a whole pickled ``nn.Module`` runs arbitrary code when loaded; it is refused unless
the caller passes ``trust_pickle=True``.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import re
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InvalidModelError, ModelportError, UntrustedPickleError, UsageError, first_line, quote_list
from ..tensors import TensorSpec, framework_dtype_to_numpy
from .base import Format, Intermediate, Probe, Session, register_format
from .factory import is_factory_spec
from .input_specs import parse_input_specs  # noqa: F401  (its home before; still imported from here)


CACHE_TURNED_OFF = ("use_cache was turned off (Hugging Face config): the key/value cache is not a tensor output; "
                    "the model returns its logits/hidden states only")


def _import_torch():
    import torch
    return torch


TRACE_DIM = 16  # the size a dynamic dim other than the batch is exported at, unless --dim says
# Sizes tried, in turn, for dynamic dims the model cannot run at TRACE_DIM (a convolutional audio
# front-end needs hundreds of samples): the first it runs at is used, and said.
TRACE_DIM_FALLBACKS = (64, 256, 1024, 4096, 16384)


def _flatten_outputs(result, name: str | None = None) -> list[tuple[str | None, Any]]:
    """Model outputs as (name or None, tensor) in order: a tensor, a tuple/list, or a dict
    (Hugging Face ModelOutput included), nested or not."""
    torch = _import_torch()
    if isinstance(result, torch.Tensor):
        return [(name, result)]
    if isinstance(result, dict):
        flat: list[tuple[str | None, Any]] = []
        for key, value in result.items():
            flat.extend(_flatten_outputs(value, str(key) if name is None else f"{name}.{key}"))
        return flat
    if isinstance(result, (list, tuple)):
        flat = []
        for i, item in enumerate(result):
            flat.extend(_flatten_outputs(item, None if name is None else f"{name}.{i}"))
        return flat
    where = f"output {name!r}" if name else "the model's output"
    raise UsageError(f"{where} is a {type(result).__name__}, not a tensor; only tensors can be model outputs",
                     hint="make forward() return tensors (a tensor, a tuple or a dict of them); for a Hugging "
                          "Face model with a key/value cache, load it with use_cache=False")


def output_names_for(flat: Sequence[tuple[str | None, Any]]) -> list[str]:
    if len(flat) == 1 and flat[0][0] is None:
        return ["output"]
    return [name if name is not None else f"output_{i}" for i, (name, _) in enumerate(flat)]


def _load_factory(spec: str, weights: str | Path | None):
    from .factory import take
    torch = _import_torch()
    model = take(spec)
    if not isinstance(model, torch.nn.Module):
        raise InvalidModelError(f"{spec!r} gave a {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        state = load_state_dict(weights)
        try:
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches are raised even when strict=False
            problems = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
            raise InvalidModelError(f"weights {str(weights)!r} do not fit {spec!r}: " + "; ".join(problems[:5])) from exc
        if result.missing_keys or result.unexpected_keys:
            detail = []
            if result.missing_keys:
                detail.append(f"missing {len(result.missing_keys)}: {', '.join(result.missing_keys[:5])}")
            if result.unexpected_keys:
                detail.append(f"unexpected {len(result.unexpected_keys)}: {', '.join(result.unexpected_keys[:5])}")
            raise InvalidModelError(f"weights {str(weights)!r} do not fit {spec!r} ({'; '.join(detail)})")
    return model


def load_state_dict(path: str | Path) -> dict:
    """Load tensors only (``weights_only=True``): no code in the file is ever run."""
    torch = _import_torch()
    path = Path(path)
    if not path.is_file():
        raise InvalidModelError(f"no such weights file: {str(path)!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if _refused_by_weights_only(exc):
            raise UntrustedPickleError(
                f"{str(path)!r} holds pickled Python objects, not just tensors; refusing to unpickle it",
                hint="save the weights with torch.save(model.state_dict(), ...)") from exc
        raise InvalidModelError(f"cannot read weights {str(path)!r}: {first_line(exc)}",
                                hint="the file may be truncated or corrupt") from exc
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]  # common training-checkpoint layouts
    if not isinstance(state, dict):
        raise InvalidModelError(f"{str(path)!r} holds a {type(state).__name__}, not a state_dict")
    return state


# A .pt2 written by modelport (ONNX -> PyTorch) carries the ONNX input and output names in this
# extra file: {"inputs": [...], "outputs": [...]}; its outputs are then named so (a lone tensor
# result has no name of its own).
PT2_NAMES = "modelport_names.json"


def _declared_names(text: str) -> dict:
    import json
    try:
        names = json.loads(text) if text else {}
    except ValueError:
        return {}
    return names if isinstance(names, dict) else {}


def _load_file(path: Path, trust_pickle: bool):
    """Return (module or ExportedProgram, kind) for a .pt/.pth/.pt2 file."""
    torch = _import_torch()
    kind = _archive_kind(path)
    try:
        if kind == "exported_program":
            with _logged("torch.export") as logged:
                try:
                    extra = {PT2_NAMES: ""}  # filled by torch.export.load when the file has it
                    program = torch.export.load(str(path), extra_files=extra)
                    program.modelport_names = _declared_names(extra[PT2_NAMES])
                    return program, kind
                except Exception as exc:
                    raise _unregistered_type(path, logged) or exc
        if kind == "torchscript":
            return torch.jit.load(str(path), map_location="cpu"), kind
    except ModelportError:
        raise
    except Exception as exc:
        raise InvalidModelError(f"cannot load {str(path)!r}: {first_line(exc)}",
                                hint="the file may be truncated or corrupt") from exc
    # A plain torch.save file: a state_dict (safe), or a pickled module (runs code on load).
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if not _refused_by_weights_only(exc):
            raise InvalidModelError(f"cannot load {str(path)!r}: {first_line(exc)}",
                                    hint="the file may be truncated or corrupt") from exc
        if not trust_pickle:
            raise UntrustedPickleError(
                f"{str(path)!r} is a pickled Python object (a whole nn.Module); loading it runs "
                "arbitrary code, so modelport refuses by default",
                hint="save TorchScript (torch.jit.script/trace(...).save) or torch.export instead, or "
                     "pass --trust-pickle if you trust where the file came from") from exc
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except (ImportError, AttributeError) as load_error:
            raise InvalidModelError(
                f"{str(path)!r} is a pickled module whose class cannot be imported here: {load_error}",
                hint="run from the folder that holds the model's code, or install its package") from load_error
    if isinstance(obj, torch.nn.Module):
        return obj, "pickled_module"
    raise InvalidModelError(
        f"{str(path)!r} holds weights only ({type(obj).__name__}), not a model",
        hint="give the model as package.module:factory and this file as --weights")


@contextlib.contextmanager
def _logged(name: str):
    """Collect what a library logs instead of printing it (torch.export.load tells the reason of a
    failure only in a logged traceback); modelport reports it in its own words."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())
            if record.exc_info:
                records.append(logging.Formatter().formatException(record.exc_info))
    logger = logging.getLogger(name)
    saved = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [Collect()], False
    try:
        yield records
    finally:
        logger.handlers, logger.propagate = saved


def _unregistered_type(path: Path, logged: list[str]) -> UsageError | None:
    """A .pt2 whose inputs/outputs are a library's types (Hugging Face ModelOutput): loading needs the
    library that registers them with torch's pytree."""
    for message in logged:
        found = re.search(r"Deserializing ([\w.]+) in pytree is not registered", message)
        if found:
            module = found.group(1).rsplit(".", 1)[0]  # the module that defines (and registers) the type
            return UsageError(f"{str(path)!r} returns {found.group(1)!r} objects, a type registered with torch "
                              "by the module that defines it", hint=f"pass --import {module}")
    return None


def _archive_kind(path: Path) -> str:
    if path.suffix == ".pt2":
        return "exported_program"
    try:
        with zipfile.ZipFile(path) as archive:
            return torch_archive_kind(archive.namelist()) or "pickle"
    except zipfile.BadZipFile:
        return "pickle"  # the legacy (pre-zip) torch.save format


def _is_cache_argument(module, name: str) -> bool:
    """Whether forward()'s argument ``name`` is a transformers Cache (its annotation says so)."""
    try:
        parameter = inspect.signature(module.forward).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return parameter is not None and "Cache" in str(parameter.annotation)


def _refused_by_weights_only(exc: Exception) -> bool:
    """torch.load(weights_only=True) met a pickled object it will not build (a class, a function)."""
    return "weights_only" in str(exc) or "Unsupported global" in str(exc)


class TorchSession(Session):
    """Runs a PyTorch model in eval mode under ``torch.inference_mode``."""

    format_name = "pytorch"

    def __init__(self, source, *, weights=None, input_specs: Sequence[TensorSpec] | None = None,
                 trust_pickle: bool = False, module=None, kind: str = "module", dims=None, **_ignored):
        text = str(source)
        if module is not None:  # built by another format's reader (a Lightning checkpoint)
            super().__init__(source)
            self.kind, self.module, self.program = kind, module, None
        elif is_factory_spec(text):
            super().__init__(text)
            self.kind = "factory"
            self.module = _load_factory(text, weights)
            self.program = None
        else:
            super().__init__(source)
            if weights is not None:
                raise UsageError("--weights goes with a package.module:factory model, not a model file")
            obj, self.kind = _load_file(self.path, trust_pickle)
            self.program = obj if self.kind == "exported_program" else None
            self.module = obj.module() if self.program is not None else obj
        if self.program is None:
            self.module.eval()  # an ExportedProgram was captured in its mode and refuses eval()
        # Hugging Face: the cache is a generation-loop object, not a tensor. Every config is turned off,
        # the copies that encoder-decoders give their stacks (T5's decoder) included.
        configs = [getattr(m, "config", None) for m in ([self.module] if self.program is not None
                                                         else self.module.modules())]
        cached = [c for c in configs if getattr(c, "use_cache", False)]
        for config in cached:
            config.use_cache = False
        if cached:
            self.warnings.append(CACHE_TURNED_OFF)
        self.source = text
        self._keyword_inputs: list[str] | None = None  # set when forward() takes the inputs by keyword
        self._flexible: bool | None = None  # a TorchScript module's batch flexibility, probed on first use
        # Sizes of dynamic dims other than the batch (by dim name or input name) for tracing and export:
        # the user's --dim, else TRACE_DIM, else the smallest fallback the model runs at.
        self.trace_dims: dict[str, int] = dict(dims or {})
        self.inputs = self._input_specs(list(input_specs) if input_specs else None)
        self._output_names: list[str] | None = None
        self.outputs = self._probe_outputs()

    # -- signatures ---------------------------------------------------------------------------
    def parameters(self) -> tuple[list[str], list[str]] | None:
        """(required, optional) argument names of forward(), or None when they cannot be read."""
        if self.program is not None:
            return [spec.arg.name for spec in self.program.graph_signature.input_specs
                    if spec.kind.name == "USER_INPUT"], []
        if hasattr(self.module, "forward") and hasattr(self.module.forward, "schema"):  # TorchScript
            arguments = self.module.forward.schema.arguments[1:]  # skip self
            return ([a.name for a in arguments if not a.has_default_value()],
                    [a.name for a in arguments if a.has_default_value()])
        try:
            params = list(inspect.signature(self.module.forward).parameters.values())
        except (TypeError, ValueError):
            return None
        named = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return ([p.name for p in named if p.default is inspect.Parameter.empty],
                [p.name for p in named if p.default is not inspect.Parameter.empty])

    def argument_names(self) -> list[str]:
        params = self.parameters()
        return params[0] if params else []

    def _input_specs(self, given: list[TensorSpec] | None) -> list[TensorSpec]:
        params = self.parameters()
        required, optional = params if params else ([], [])
        accepted = required + optional
        if given is not None:
            # Positional specs ("1,3,224,224") take forward()'s argument names in order; these
            # become the ONNX input names.
            named = []
            for i, spec in enumerate(given):
                if spec.name == f"input_{i}" and i < len(accepted):
                    spec = TensorSpec(accepted[i], spec.shape, spec.dtype, dim_names=spec.dim_names)
                named.append(spec)
            if params is not None:
                named = self._check_names(named, required, accepted)
            return named
        if self.program is not None:
            specs = []
            placeholders = {n.name: n for n in self.program.graph.nodes if n.op == "placeholder"}
            for spec in self.program.graph_signature.input_specs:
                if spec.kind.name != "USER_INPUT":
                    continue
                val = placeholders[spec.arg.name].meta.get("val")
                shape = tuple(d if isinstance(d, int) else None for d in val.shape)
                specs.append(TensorSpec(spec.arg.name, shape, framework_dtype_to_numpy(val.dtype)))
            return specs
        if not required and optional:
            example = f"{optional[0]}:1,128:int64" if "ids" in optional[0] else f"{optional[0]}:1,3,224,224"
            raise UsageError(f"forward() of {self.source!r} takes only optional arguments ({', '.join(optional[:8])}"
                             f"{', ...' if len(optional) > 8 else ''}): say which to feed",
                             hint=f"pass --input-shape for each input to feed, e.g. --input-shape {example}")
        # TorchScript and plain modules carry no shapes: names only, until --input-shape is given.
        return [TensorSpec(n, None, np.float32) for n in required]

    def _check_names(self, given: list[TensorSpec], required: list[str], accepted: list[str]) -> list[TensorSpec]:
        """Named --input-shape entries against forward()'s arguments: a near miss ("input_idz") is
        refused; names that match no argument at all rename the inputs in order (the ONNX inputs
        take them); a subset of the optional arguments is passed by keyword."""
        import difflib
        names = [s.name for s in given]
        unknown = [n for n in names if n not in accepted]
        for name in unknown:
            close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.75)
            if close:
                raise UsageError(f"--input-shape names {name!r}, which forward() of {self.source!r} does not take; "
                                 f"did you mean {close[0]!r}?", hint=f"its arguments are {quote_list(accepted)}")
        if unknown and len(unknown) == len(names) and len(names) == len(required):
            self.warnings.append("inputs renamed in order: " + ", ".join(
                f"forward() argument {arg!r} is input {name!r}" for arg, name in zip(required, names) if arg != name))
            return given
        if unknown:
            raise UsageError(f"--input-shape names {quote_list(unknown)}, which forward() of {self.source!r} "
                             f"does not take; its arguments are {quote_list(accepted)}",
                             hint="spell the names as forward() does, or give every input a new name in order")
        cached = [n for n in names if _is_cache_argument(self.module, n)]
        if cached:
            raise UsageError(
                f"--input-shape names {quote_list(cached)}, the key/value cache of a transformers decoder: since "
                "transformers 5 it is a Cache object, not a tensor, so a factory's model cannot take it as an input",
                hint="convert without it: give input_ids (and attention_mask) only, and the model recomputes the "
                     "whole sequence at each step (exporting a decoder with its cache as inputs and outputs is not "
                     "supported from a factory yet)")
        missing = [n for n in required if n not in names]
        if missing:
            raise UsageError(f"the model takes {len(required)} input(s) ({', '.join(required)}) "
                             f"but --input-shape gave {len(given)}; missing {quote_list(missing)}")
        if names != accepted[:len(names)]:
            self._keyword_inputs = names
        return given

    def _call(self, tensors: Sequence[Any]):
        """Run forward() on tensors in input order: positionally, or by keyword when the inputs are
        not forward()'s first arguments in order (input_ids + token_type_ids, skipping the mask)."""
        if self._keyword_inputs:
            return self.module(**dict(zip(self._keyword_inputs, tensors)))
        return self.module(*tensors)

    def _trace_size(self, spec: TensorSpec, axis: int) -> int:
        name = self._dim_name(spec, axis)
        return int(self.trace_dims.get(name, self.trace_dims.get(spec.name, TRACE_DIM)))

    @property
    def flexible_batch(self) -> bool:
        """Eager PyTorch runs any batch size; a traced TorchScript module may have baked the batch of
        its trace into its graph (``int(x.shape[0])``, a size passed to a Python op): it is flexible
        only if its outputs follow the batch when run at another one (probed once)."""
        if self.kind != "torchscript" or not self.shapes_known or not self.inputs:
            return True
        if self._flexible is None:
            self._flexible = self._follows_batch()
        return self._flexible

    def _follows_batch(self) -> bool:
        torch = _import_torch()
        traced = next((s.shape[0] for s in self.inputs if s.shape and s.shape[0] is not None), 1)
        try:
            with torch.inference_mode():
                runs = [_flatten_outputs(self._call(self.example_args(batch=b))) for b in (traced, traced + 1)]
        except Exception:  # noqa: BLE001 - a graph that cannot run at another batch is fixed to its own
            return False
        for (_, first), (_, second) in zip(*runs):
            if first.dim() == 0 or second.dim() == 0:
                continue
            if first.shape[0] == traced and second.shape[0] != traced + 1:
                return False
        return True

    @property
    def exportable(self):
        """The module for exporters, which pass inputs in order: the model itself, or a wrapper
        that passes them by keyword (see _call)."""
        return keyword_call(self.module, self._keyword_inputs) if self._keyword_inputs else self.module

    @property
    def shapes_known(self) -> bool:
        return all(spec.shape is not None for spec in self.inputs)

    def require_shapes(self) -> None:
        if not self.shapes_known:
            names = ", ".join(s.name for s in self.inputs) or "x"
            raise UsageError(
                f"{self.source!r} does not record its input shapes",
                hint=f"pass --input-shape for each input ({names}), e.g. --input-shape {self.inputs[0].name if self.inputs else 'x'}:1,3,224,224")

    def _probe_outputs(self) -> list[TensorSpec]:
        """Output names, shapes and dtypes from one run (batch 1), when shapes are known."""
        if not self.shapes_known:
            return []
        torch = _import_torch()
        try:
            with torch.inference_mode():
                flat = _flatten_outputs(self._call(self.example_args()))
        except ModelportError:
            raise
        except Exception as exc:  # shapes or dtypes the model cannot take: the user's to change
            flat = self._probe_larger_dims()
            if flat is None:
                raise self._refusal(exc) from exc
        names = output_names_for(flat)
        declared = getattr(self.program, "modelport_names", {}).get("outputs") if self.program is not None else None
        if isinstance(declared, list) and len(declared) == len(names) and all(isinstance(n, str) for n in declared):
            names = declared
        self._output_names = names
        return [TensorSpec(n, (None,) + tuple(t.shape[1:]) if t.dim() else (), framework_dtype_to_numpy(t.dtype))
                for n, (_, t) in zip(names, flat)]

    def _untraced_dims(self) -> list[str]:
        """Names (dim name, else input name) of the dynamic dims other than the batch that --dim
        does not size."""
        names = []
        for spec in self.inputs:
            for axis, size in enumerate(spec.shape or ()):
                if axis and size is None:
                    name = self._dim_name(spec, axis)
                    if name not in self.trace_dims and spec.name not in self.trace_dims and name not in names:
                        names.append(name)
        return names

    @staticmethod
    def _dim_name(spec: TensorSpec, axis: int) -> str:
        names = spec.dim_names or ()
        return names[axis] if axis < len(names) and names[axis] and names[axis] != "?" else spec.name

    def _probe_larger_dims(self):
        """The model's outputs at the smallest of TRACE_DIM_FALLBACKS its unsized dynamic dims run at
        (kept in trace_dims, with a warning), or None when none works or no dim is unsized."""
        torch = _import_torch()
        unsized = self._untraced_dims()
        if not unsized:
            return None
        for size in TRACE_DIM_FALLBACKS:
            self.trace_dims.update({name: size for name in unsized})
            try:
                with torch.inference_mode():
                    flat = _flatten_outputs(self._call(self.example_args()))
            except Exception:  # noqa: BLE001 - the next size may fit
                continue
            self.warnings.append(
                f"dynamic dim(s) {', '.join(map(repr, unsized))} traced and checked at {size}, the smallest of "
                f"{TRACE_DIM}, {', '.join(map(str, TRACE_DIM_FALLBACKS))} the model runs at; "
                f"give --dim {unsized[0]}=N to choose")
            return flat
        for name in unsized:
            self.trace_dims.pop(name, None)
        return None

    def _refusal(self, exc: Exception) -> UsageError:
        given = ", ".join(f"{s.name}:{s.shape_str()}:{s.dtype.name}" for s in self.inputs)
        unsized = self._untraced_dims()
        hint = "check --input-shape: the rank, the sizes and the dtype of each input"
        if unsized or self.trace_dims:
            hint += (f"; dynamic dims are traced at {TRACE_DIM} (tried up to {TRACE_DIM_FALLBACKS[-1]}) unless "
                     f"--dim NAME=SIZE says otherwise (e.g. --dim {(unsized or list(self.trace_dims))[0]}=3200)")
        return UsageError(f"{self.source!r} fails on inputs shaped {given}: {type(exc).__name__}: {first_line(exc)}",
                          hint=hint)

    def example_args(self, batch: int | None = None):
        """Zero-free example tensors for export: small random values, batch overridden if asked;
        dynamic dims other than the batch at their trace size (--dim, else TRACE_DIM)."""
        torch = _import_torch()
        self.require_shapes()
        generator = torch.Generator().manual_seed(0)
        args = []
        for spec in self.inputs:
            shape = [d if d is not None else (1 if axis == 0 else self._trace_size(spec, axis))
                     for axis, d in enumerate(spec.shape)]
            if batch is not None and shape:
                shape[0] = batch
            dtype = getattr(torch, spec.dtype.name)
            if dtype.is_floating_point:
                args.append(torch.rand(shape, generator=generator).to(dtype))
            elif dtype == torch.bool:
                args.append(torch.rand(shape, generator=generator) > 0.5)
            else:
                args.append(torch.randint(0, 2, shape, generator=generator, dtype=dtype))
        return tuple(args)

    # -- running ------------------------------------------------------------------------------
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = _import_torch()
        args = [torch.from_numpy(np.ascontiguousarray(feeds[s.name])) for s in self.inputs]
        with torch.inference_mode():
            flat = _flatten_outputs(self._call(args))
        names = self._output_names or output_names_for(flat)
        return {n: t.detach().cpu().numpy() for n, (_, t) in zip(names, flat)}

    @property
    def handle(self):
        return self.program if self.program is not None else self.module

    @property
    def intermediate_scheme(self) -> str | None:
        # Forward hooks need a Python nn.Module; TorchScript modules do not call them.
        torch = _import_torch()
        return None if isinstance(self.module, torch.jit.ScriptModule) else "torch-module"

    def run_with_intermediates(self, feeds, names=None) -> list[Intermediate]:
        """Module outputs (forward hooks; modules returning one tensor), in the order they ran."""
        torch = _import_torch()
        if self.intermediate_scheme is None:
            return super().run_with_intermediates(feeds, names)
        wanted = set(names) if names is not None else None
        captured: list[Intermediate] = []
        seen: set[str] = set()
        handles = []
        for name, module in self.module.named_modules():
            if not name or (wanted is not None and name not in wanted):
                continue

            def hook(mod, args, output, name=name):
                if isinstance(output, torch.Tensor) and name not in seen:
                    seen.add(name)
                    captured.append(Intermediate(name, output.detach().cpu().numpy(),
                                                 {"module": name, "class": type(mod).__name__}))
            handles.append(module.register_forward_hook(hook))
        try:
            self.run(feeds)
        finally:
            for handle in handles:
                handle.remove()
        return captured

    def describe(self) -> dict[str, Any]:
        torch = _import_torch()
        kinds = {"factory": "Python factory", "torchscript": "TorchScript", "exported_program": "ExportedProgram",
                 "pickled_module": "pickled nn.Module", "lightning": "Lightning checkpoint", "module": "nn.Module"}
        params = sum(p.numel() for p in self.module.parameters()) if hasattr(self.module, "parameters") else None
        return {"kind": kinds.get(self.kind, self.kind), "parameters": params, "torch": torch.__version__}


def keyword_call(model, names: Sequence[str]):
    """``model`` wrapped so that inputs given in order reach it by keyword (exporters pass them in
    order). forward() declares one parameter per input, as exporters read the signature."""
    torch = _import_torch()

    def forward(self, *tensors):
        return self.model(**dict(zip(names, tensors)))
    forward.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])

    class KeywordInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
    KeywordInputs.forward = forward
    return KeywordInputs()


def open_pytorch(source, **options) -> TorchSession:
    return TorchSession(source, **options)


def torch_archive_kind(names: list[str]) -> str | None:
    """'exported_program', 'torchscript', 'pickle' (torch.save) or None, from a zip's member names."""
    if any(n.endswith("serialized_exported_program.json") or n.endswith("/models/model.json")
           or n.endswith("archive_format") for n in names):
        return "exported_program"
    if any("/code/" in n for n in names) and any(n.endswith("/data.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        return "pickle"
    return None


_ARCHIVE_DESCRIPTIONS = {"exported_program": "a torch.export archive (.pt2)", "torchscript": "a TorchScript archive",
                         "pickle": "a torch.save archive"}


def sniff_pytorch(probe: Probe) -> str | None:
    if probe.is_dir:
        return None
    head = probe.head
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a pickle (legacy torch.save format)"
    names = probe.zip_names
    kind = torch_archive_kind(names) if names is not None else None
    return _ARCHIVE_DESCRIPTIONS[kind] if kind else None


register_format(Format("pytorch", "PyTorch", (".pt", ".pth", ".pt2"), open_pytorch, sniff_pytorch, extra="torch",
                       runtime_modules=("torch",), aliases=("torch", "torchscript"),
                       open_options=frozenset({"weights", "input_specs", "trust_pickle", "dims"}),
                       factory_framework="torch"))
