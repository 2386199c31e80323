"""Triton's ensembles: a model whose config says ``platform: "ensemble"`` runs other models of the
repository as one pipeline, server-side. Its ``input`` and ``output`` are its own tensors;
``ensemble_scheduling { step [ ... ] }`` lists the models, each with ``input_map`` (the step model's
input name -> an ensemble tensor) and ``output_map`` (the step model's output name -> an ensemble
tensor). A step runs as soon as every tensor it takes exists, steps that are ready together run
at once, and each goes through its own model's batcher (so it is batched with that model's other
requests and counted in its statistics).

The plan is checked when the ensemble loads, so that a request never meets a broken pipeline: every
step model is in the repository (not the ensemble itself), every tensor a step takes comes from the
ensemble's inputs or an earlier step, no tensor is produced twice, and every output of the ensemble
is produced. Whether the step models are ready is asked per request (they load on their own).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping

import numpy as np

from ..errors import ServeError, UsageError
from ..tensors import TensorSpec
from .codec import numpy_dtype

PLATFORM = "ensemble"


@dataclass(frozen=True)
class Step:
    model: str
    version: str                # "" for the model's latest ready version (Triton's -1)
    inputs: dict[str, str]      # the step model's input -> the ensemble tensor it takes
    outputs: dict[str, str]     # the step model's output -> the ensemble tensor it makes


def specs(config) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The ensemble's own inputs and outputs, from its config (dims after the batch dim)."""
    from .proto import grpc_service_pb2 as pb
    batched = config.max_batch_size > 0

    def spec(tensor) -> TensorSpec:
        name = pb.DataType.Name(tensor.data_type).removeprefix("TYPE_")
        dtype = np.dtype(object) if name == "STRING" else numpy_dtype(name)
        dims = tuple(None if d < 0 else int(d) for d in tensor.dims)
        return TensorSpec(tensor.name, ((None,) if batched else ()) + dims, dtype)
    if not config.input or not config.output:
        raise UsageError("an ensemble's config declares its input and output tensors (name, data_type, dims)")
    return [spec(t) for t in config.input], [spec(t) for t in config.output]


def plan(config, known_models: set[str]) -> list[Step]:
    """The steps of the ensemble's config, checked as a pipeline that can run."""
    steps = [Step(step.model_name, "" if step.model_version < 0 else str(step.model_version),
                  dict(step.input_map), dict(step.output_map)) for step in config.ensemble_scheduling.step]
    if not steps:
        raise UsageError("an ensemble needs ensemble_scheduling { step [ ... ] }")
    available = {tensor.name for tensor in config.input}
    made: set[str] = set()
    for index, step in enumerate(steps):
        if step.model == config.name:
            raise UsageError(f"step {index} of ensemble {config.name!r} runs the ensemble itself")
        if step.model not in known_models:
            raise UsageError(f"step {index} of ensemble {config.name!r} runs {step.model!r}, which is not in the "
                             "repository")
        if not step.inputs or not step.outputs:
            raise UsageError(f"step {index} ({step.model!r}) needs an input_map and an output_map")
        for tensor in step.outputs.values():
            if tensor in made or tensor in available:
                raise UsageError(f"ensemble tensor {tensor!r} is produced twice (or is also an ensemble input)")
            made.add(tensor)
    pending, produced = list(steps), set(available)
    while pending:
        ready = [step for step in pending if set(step.inputs.values()) <= produced]
        if not ready:
            missing = sorted({t for step in pending for t in step.inputs.values()} - produced - made)
            raise UsageError(f"ensemble {config.name!r} cannot run: " + (
                f"no input or step makes {missing}" if missing else "its steps wait on each other in a cycle"))
        for step in ready:
            pending.remove(step)
            produced |= set(step.outputs.values())
    unmade = [tensor.name for tensor in config.output if tensor.name not in produced]
    if unmade:
        raise UsageError(f"no step of ensemble {config.name!r} produces its output {unmade}")
    return steps


RunStep = Callable[[Step, dict[str, np.ndarray]], Awaitable[dict[str, np.ndarray]]]


async def run(steps: list[Step], feeds: Mapping[str, np.ndarray], wanted: list[str],
              run_step: RunStep) -> dict[str, np.ndarray]:
    """Every step, each once its tensors exist (ready ones together); the wanted ensemble tensors."""
    tensors = dict(feeds)
    pending = list(steps)
    while pending:
        ready = [step for step in pending if all(t in tensors for t in step.inputs.values())]
        if not ready:  # plan() rules this out; kept as a guard against a config changed under us
            raise ServeError("the ensemble's remaining steps wait for tensors nothing makes", status=500)
        answers = await asyncio.gather(*(run_step(step, {name: tensors[tensor] for name, tensor in step.inputs.items()})
                                         for step in ready))
        for step, outputs in zip(ready, answers):
            pending.remove(step)
            for name, tensor in step.outputs.items():
                if name not in outputs:
                    raise ServeError(f"step model {step.model!r} has no output {name!r} (the ensemble's output_map "
                                     "names it)")
                tensors[tensor] = outputs[name]
    return {name: tensors[name] for name in wanted}
