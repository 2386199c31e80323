"""PyTorch Lightning checkpoints (.ckpt): the weights and hyper-parameters a ``Trainer`` saved,
with the model's class given as ``--factory package.module:LitModel``.

A checkpoint holds no code, so the class comes from the user. The file is read with
``torch.load(weights_only=True)``: tensors, numbers, strings and containers only, nothing
pickled is run. The model is then built by the class's own ``load_from_checkpoint`` (Lightning
passes the saved hyper-parameters to ``__init__`` and calls the ``on_load_checkpoint`` hook), or,
for a factory that is not a LightningModule, called and given the checkpoint's ``state_dict``.
The result is a PyTorch model in every other respect: it converts on PyTorch's edges.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from ..errors import InvalidModelError, UntrustedPickleError, UsageError, first_line
from ..tensors import TensorSpec, framework_dtype_to_numpy
from .base import Format, Probe, register_format
from .pytorch import TorchSession

LIGHTNING_KEY = b"pytorch-lightning_version"  # every Lightning checkpoint records the version it was saved by


def read_checkpoint(path: Path) -> dict[str, Any]:
    import torch
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InvalidModelError(f"no such file: {str(path)!r}") from None
    except Exception as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise UntrustedPickleError(
                f"{path.name!r} holds pickled Python objects beyond tensors and plain values (in its "
                f"hyper-parameters or callbacks state); refusing to unpickle it: {first_line(exc)}",
                hint="save plain hyper-parameters (numbers, strings, lists, dicts), or strip the checkpoint to "
                     "{'state_dict': ..., 'hyper_parameters': ...}") from exc
        raise InvalidModelError(f"cannot read {path.name!r}: {first_line(exc)}",
                                hint="the file may be truncated or corrupt; copy it again") from exc
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise InvalidModelError(f"{path.name!r} is not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def _strip_common_prefix(state: dict, expected: set[str]) -> dict:
    """A plain module whose LightningModule held it as ``self.model``: its keys carry 'model.'."""
    if set(state) == expected or not state:
        return state
    prefixes = {key.split(".", 1)[0] + "." for key in state}
    if len(prefixes) == 1:
        prefix = prefixes.pop()
        stripped = {key[len(prefix):]: value for key, value in state.items()}
        if set(stripped) == expected:
            return stripped
    return state


def build_module(spec: str | None, path: Path, checkpoint: dict[str, Any]):
    import torch

    from .factory import resolve
    if not spec:
        raise UsageError(f"{path.name!r} is a Lightning checkpoint: it holds weights and hyper-parameters, not "
                         "the model's code", hint="give the LightningModule class: --factory package.module:LitModel")
    target = resolve(spec)
    saved = checkpoint.get("hyper_parameters")
    if isinstance(target, type) and hasattr(target, "load_from_checkpoint"):
        try:
            return target.load_from_checkpoint(path, map_location="cpu", weights_only=True)
        except TypeError as exc:  # __init__ needs arguments the checkpoint did not save
            hint = ("call self.save_hyperparameters() in __init__ so that the checkpoint records them"
                    if not saved else "the class's __init__ does not take the saved hyper-parameters "
                                      f"({', '.join(map(str, saved))})")
            raise InvalidModelError(f"cannot build {spec!r} from {path.name!r}: {first_line(exc)}", hint=hint) from exc
        except RuntimeError as exc:  # load_state_dict: missing/unexpected keys or shapes
            raise InvalidModelError(f"the weights in {path.name!r} do not fit {spec!r}: {first_line(exc)}",
                                    hint="is this the class the checkpoint was trained with?") from exc
        except Exception as exc:
            raise InvalidModelError(f"{spec}.load_from_checkpoint failed: {type(exc).__name__}: {first_line(exc)}",
                                    hint="run with --debug for the traceback") from exc
    try:
        model = target(**saved) if isinstance(target, type) and isinstance(saved, dict) else \
            (target() if callable(target) and not isinstance(target, torch.nn.Module) else target)
    except Exception as exc:
        raise InvalidModelError(f"the factory {spec!r} raised {type(exc).__name__}: {first_line(exc)}",
                                hint="it must build the model without arguments (or from the saved "
                                     "hyper-parameters, for a class)") from exc
    if not isinstance(model, torch.nn.Module):
        raise InvalidModelError(f"{spec!r} gave a {type(model).__name__}, not a torch.nn.Module")
    state = _strip_common_prefix(checkpoint["state_dict"], set(model.state_dict()))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InvalidModelError(f"the weights in {path.name!r} do not fit {spec!r}: {first_line(exc)}",
                                hint="is this the model the checkpoint was trained with?") from exc
    return model


def example_input_specs(module, names: list[str]) -> list[TensorSpec] | None:
    """TensorSpecs from a LightningModule's ``example_input_array`` (batch dynamic), if it has one."""
    import torch
    example = getattr(module, "example_input_array", None)
    if example is None:
        return None
    if isinstance(example, torch.Tensor):
        example = (example,)
    if isinstance(example, dict):
        items = list(example.items())
    elif isinstance(example, (tuple, list)):
        items = list(zip(names or [f"input_{i}" for i in range(len(example))], example))
    else:
        return None
    if not all(isinstance(value, torch.Tensor) for _, value in items):
        return None
    return [TensorSpec(name, (None, *value.shape[1:]) if value.dim() else (), framework_dtype_to_numpy(value.dtype))
            for name, value in items]


class LightningSession(TorchSession):
    """A LightningModule rebuilt from its checkpoint, run as any PyTorch model."""

    format_name = "lightning"

    def __init__(self, source, *, factory: str | None = None, input_specs=None, **_ignored):
        path = Path(source)
        self.checkpoint_info = {}
        checkpoint = read_checkpoint(path)
        module = build_module(factory, path, checkpoint)
        self.checkpoint_info = {"lightning_version": checkpoint.get("pytorch-lightning_version"),
                                "epoch": checkpoint.get("epoch"), "global_step": checkpoint.get("global_step"),
                                "hyper_parameters": _plain(checkpoint.get("hyper_parameters")),
                                "factory": factory}
        if not input_specs:
            import inspect
            try:
                names = [p for p in inspect.signature(module.forward).parameters]
            except (TypeError, ValueError):
                names = []
            input_specs = example_input_specs(module, names)
        super().__init__(path, module=module, kind="lightning", input_specs=input_specs)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **{k: v for k, v in self.checkpoint_info.items() if v is not None}}


def _plain(value):
    """Hyper-parameters as JSON-friendly values for ``info``."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)


def open_lightning(source, **options) -> LightningSession:
    return LightningSession(source, **options)


def sniff_lightning(probe: Probe) -> str | None:
    names = probe.zip_names if not probe.is_dir else None
    pickles = [n for n in names or () if n.endswith("data.pkl")]
    if not pickles:
        return None
    try:
        with zipfile.ZipFile(probe.path) as archive, archive.open(pickles[0]) as handle:
            head = handle.read(1 << 20)
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    return "a PyTorch Lightning checkpoint" if LIGHTNING_KEY in head else None


register_format(Format("lightning", "PyTorch Lightning checkpoint", (".ckpt",), open_lightning, sniff_lightning,
                       extra="torch", runtime_modules=("torch", "lightning", "pytorch_lightning"),
                       open_options=frozenset({"factory", "input_specs"})),
                before="pytorch")  # a checkpoint is a torch.save archive too
