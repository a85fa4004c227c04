"""A student folder's run identity and resume rule: which settings make another run, the checkpoint (tensors
and plain values only, so that it loads with ``weights_only=True``; the whole model and optimizer state however
they are sharded) and what a folder holds on arrival."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.optimizer import AcceleratedOptimizer
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict, set_state_dict

from tokendistill.artefacts import CHECKPOINT, CHECKPOINT_INFO, STUDENT_FOLDER
from tokendistill.config import TrainConfig, config_hash, differing_keys, fingerprint
from tokendistill.errors import UserError
from tokendistill.folders import Found, Holds, open_output, read_json, write_file
from tokendistill.options import field_defaults, to_dict
from tokendistill.student import find_record

# Settings that do not change the trained weights: a run that differs only in these resumes the same folder.
_NOT_IDENTITY = ("output", "overwrite", "device", "checkpoint_every", "batch_by_length", "strict", "report_to",
                 "push_to_hub", "base_model_id")
IDENTITY_VERSION = 3
# Options that version 3 added with a default that trains differently from version 2, and the value that trains as
# version 2 did. A run at these values keeps its version-2 identity, so that a folder (a grid) trained before
# them resumes when its YAML pins them (max_grad_norm: 0), and a run at the new default never takes it for its own.
_VERSION_2 = {"max_grad_norm": 0.0}

# 2: the optimizer's state keyed by parameter name, as torch's distributed state-dict API gives it whatever the
# sharding; 1 (no "format" field, written before FSDP runs could checkpoint) keyed it by position.
CHECKPOINT_FORMAT = 2

log = logging.getLogger(__name__)


def run_identity(config: TrainConfig) -> str:
    """The hash of the settings that change the weights. Settings at their default are left out, so that an
    option added in a later version (at its default) keeps the identity of every run, and of every folder whose
    fingerprint holds it (a teacher's rationales), instead of orphaning a grid half done. An option whose default
    trains differently from before raises ``IDENTITY_VERSION`` and names the old behaviour in ``_VERSION_2``."""
    defaults = field_defaults(type(config))
    values = to_dict(config)
    if all(values[key] == old for key, old in _VERSION_2.items()):
        version, defaults = 2, {**defaults, **_VERSION_2}
    else:
        version = IDENTITY_VERSION
    chosen = {key: value for key, value in values.items()
              if key not in _NOT_IDENTITY and (key not in defaults or value != defaults[key])}
    return config_hash({"identity_version": version, **chosen})


def rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain values, so that the checkpoint loads with
    ``weights_only=True`` (no pickled objects: a checkpoint file never runs code)."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rank_rng_state(checkpoint: dict[str, Any], rank: int, world: int) -> dict[str, Any]:
    """This process's random state in ``checkpoint``: its own where the run had as many processes (a checkpoint
    written before they were all kept holds the main process's alone)."""
    states = checkpoint.get("rng_by_rank")
    if isinstance(states, list) and len(states) == world:
        return states[rank]
    if world > 1 or states is not None:
        log.warning("resuming with %d processes a run checkpointed with %s: every process takes the main process's "
                    "random state, so the result is not bit-identical to an uninterrupted run", world,
                    len(states) if isinstance(states, list) else "an unknown number of")
    return checkpoint["rng"]


def training_state(accelerator: Accelerator, model: torch.nn.Module,
                   optimizer: AcceleratedOptimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """The whole model's and optimizer's state as plain CPU tensors, gathered from every process's shard under
    FSDP. Every process must call it (it gathers); the main process receives the tensors to write.

    Not accelerate's ``save_state``: that writes files per process and loads what it registers (the scheduler;
    the random states too, in versions our floor allows) by unpickling, where this one file of whole tensors
    loads with ``weights_only=True`` and resumes with any process count. The whole state must fit the main
    process's CPU memory: a student's does; sharding is for the GPUs' memory.
    """
    optimizer_state = get_optimizer_state_dict(model, optimizer.optimizer,
                                               options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return accelerator.get_state_dict(model), optimizer_state


def restore_training_state(accelerator: Accelerator, model: torch.nn.Module, optimizer: AcceleratedOptimizer,
                           checkpoint: dict[str, Any]) -> None:
    """Load a checkpoint's whole state into a prepared model and optimizer: under FSDP each process keeps its
    own shard of it."""
    unwrapped = accelerator.unwrap_model(model)
    held, wanted = set(checkpoint["model"]), set(unwrapped.state_dict())
    if held != wanted:  # the identity matched, so the file was edited: refused in one line, not mid-load
        raise UserError(f"{CHECKPOINT} does not fit this student ({', '.join(sorted(held ^ wanted)[:3])}); pass "
                        "--overwrite to start over")
    if checkpoint.get("format", 1) == 1:  # keyed by position, written without sharding: loads as it was saved
        unwrapped.load_state_dict(checkpoint["model"])
        optimizer.optimizer.load_state_dict(checkpoint["optimizer"])
        return
    # A tensor tied to several modules (T5's one embedding matrix) is saved under each of their names; FSDP's
    # loader shards it under its first name and fails on the others, so those are left out (loading the first
    # fills them all).
    first_names = {name for name, _ in unwrapped.named_parameters()} | {name for name, _ in unwrapped.named_buffers()}
    set_state_dict(model, optimizer.optimizer,
                   model_state_dict={key: value for key, value in checkpoint["model"].items() if key in first_names},
                   optim_state_dict=checkpoint["optimizer"], options=StateDictOptions(full_state_dict=True, strict=False))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """One file, written beside and renamed into place: a kill leaves the previous checkpoint intact."""
    write_file(path, lambda handle: torch.save(state, handle), crash="train.mid_checkpoint")


def load_checkpoint(path: Path, steps: int | None = None) -> dict[str, Any]:
    """A checkpoint this tool wrote, loaded without unpickling any object (``weights_only=True``), every field
    checked by type, shape and range (``steps``: the run's, which its step must be under) before any is used.

    A crafted file cannot run code here; a damaged or foreign one is refused in one line.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise UserError(f"{path} is damaged or not a checkpoint of this tool ({type(error).__name__}); nothing "
                        "was loaded from it: pass --overwrite to start over, or delete the file") from None
    wanted = {"step", "model", "optimizer", "scheduler", "rng", "history"}
    if not isinstance(state, dict) or not wanted <= set(state):
        raise UserError(f"{path} is not a checkpoint of this tool (missing fields); pass --overwrite to start "
                        "over, or delete the file")
    if problem := checkpoint_problem(state, steps):
        raise UserError(f"{path} is damaged ({problem}); nothing was loaded from it: pass --overwrite to start "
                        "over, or delete the file")
    return state


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rng_problem(rng: Any) -> str | None:
    if not isinstance(rng, dict) or not {"python", "numpy", "torch"} <= set(rng):
        return "its random state lacks python, numpy or torch"
    python, numpy_state = rng["python"], rng["numpy"]
    if not (isinstance(python, (list, tuple)) and len(python) == 3 and isinstance(python[1], (list, tuple))
            and len(python[1]) == 625 and all(_is_int(v) for v in python[1])):
        return "its python random state is not Python's (625 integers)"
    if not (isinstance(numpy_state, (list, tuple)) and len(numpy_state) == 5 and isinstance(numpy_state[1], torch.Tensor)
            and numpy_state[1].shape == (624,) and _is_int(numpy_state[2])):
        return "its numpy random state is not numpy's (624 keys and a position)"
    if not (isinstance(rng["torch"], torch.Tensor) and rng["torch"].dtype == torch.uint8):
        return "its torch random state is not a byte tensor"
    return None


def checkpoint_problem(state: dict[str, Any], steps: int | None) -> str | None:
    """What is wrong with a loaded checkpoint's fields, or None."""
    step, history = state["step"], state["history"]
    if not _is_int(step) or step < 1 or (steps is not None and step >= steps):
        return f"its step {step!r} is not a step before the run's last ({steps})"
    if not (isinstance(history, list) and len(history) == step and all(
            isinstance(entry, dict) and _is_int(entry.get("step")) and isinstance(entry.get("loss"), (int, float))
            for entry in history)):
        return "its history is not one entry per step taken"
    if not (isinstance(state["model"], dict) and state["model"] and all(
            isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state["model"].items())):
        return "its model state is not named tensors"
    if not isinstance(state["optimizer"], dict) or not isinstance(state["scheduler"], dict):
        return "its optimizer or scheduler state is not a mapping"
    if problem := _rng_problem(state["rng"]):
        return problem
    by_rank = state.get("rng_by_rank")
    if by_rank is not None and not (isinstance(by_rank, list) and by_rank and all(_rng_problem(r) is None
                                                                                  for r in by_rank)):
        return "its per-process random states are damaged"
    if not (state.get("threads") is None or (_is_int(state["threads"]) and state["threads"] > 0)):
        return "its thread count is not a positive whole number"
    threads = state.get("thread_history")
    if not (threads is None or (isinstance(threads, list) and all(_is_int(t) and t > 0 for t in threads))):
        return "its thread history is not a list of positive whole numbers"
    if state.get("format", 1) not in (1, CHECKPOINT_FORMAT):
        return f"its format {state.get('format')!r} is not one this version reads"
    return None


class AlreadyTrained(Exception):  # noqa: N818 - a signal, not an error
    def __init__(self, output: Path) -> None:
        super().__init__(str(output))
        self.output = output


def input_fingerprints(config: TrainConfig) -> dict[str, Any]:
    """The student's starting weights and the rationales (and teacher) it learns from, as they are on disk now."""
    fingerprints = {
        "student_fingerprint": fingerprint(config.student), "rationales_fingerprint": fingerprint(config.rationales)
    }
    for role, model in config.other_models().items():
        fingerprints[f"{role}_fingerprint"] = fingerprint(model)
    return fingerprints


def _differences(held: dict[str, Any], config: TrainConfig) -> list[str]:
    current = {key: value for key, value in to_dict(config).items() if key not in _NOT_IDENTITY}
    current.update(input_fingerprints(config))
    # A run written before identity version 3 lacks the options that came with it: it trained as their
    # version-2 value (no clipping), not as their new default.
    held = {**_VERSION_2, **{key: value for key, value in held.items() if key not in _NOT_IDENTITY}}
    return differing_keys(held, current, field_defaults(type(config)))


def prepare_output(output: Path, config: TrainConfig) -> tuple[dict[str, Any] | None, bool]:
    """Check what ``output`` holds (by `folders.open_output`'s rule): the checkpoint to resume from, if any, and
    whether the folder is to be cleared (--overwrite) once the run's inputs have loaded: nothing is removed
    before that.

    Raises ``AlreadyTrained`` when it holds a finished run of this very configuration. The checkpoint's
    identity (``checkpoint.json``) is compared before any of its state is read.
    """
    fix = "pass --overwrite to start over, or choose another --output"
    checkpoint: dict[str, Any] | None = None

    def inspect(folder: Path) -> Found:
        nonlocal checkpoint
        if record := find_record(folder):
            changed = _differences({**record.config, **record.inputs}, config)
            return Found(Holds.OTHER, tuple(changed)) if changed else Found(Holds.FINISHED)
        if (folder / CHECKPOINT).exists():
            if not (folder / CHECKPOINT_INFO).exists():
                return Found(Holds.OTHER, ("(a checkpoint of an older version, whose format is not loaded: it "
                                           "could run code)",))
            held = read_json(folder / CHECKPOINT_INFO, fix)
            changed = _differences({**held.get("config", {}), **held.get("inputs", {})}, config)
            if changed:
                return Found(Holds.OTHER, tuple(changed))
            # A damaged one is refused, or cleared (--overwrite).
            checkpoint = load_checkpoint(folder / CHECKPOINT, config.steps)
            return Found(Holds.PARTIAL)
        return Found(Holds.FOREIGN)

    found = open_output(output, STUDENT_FOLDER, inspect, config.overwrite)
    if found.holds is Holds.FINISHED:
        raise AlreadyTrained(output)
    return checkpoint if found.holds is Holds.PARTIAL else None, found.clear


def sharded_checkpoint_problem(distributed_type: str, checkpoint_every: int) -> str | None:
    """Periodic checkpoints gather the whole model and optimizer state through torch's distributed state-dict
    API, which knows FSDP's shards but not DeepSpeed's engine (its ZeRO partitions of the optimizer state).
    Refused under DeepSpeed before the model loads; the final weights are gathered from every shard and are
    right."""
    if checkpoint_every and distributed_type == "DEEPSPEED":
        return (f"--checkpoint-every {checkpoint_every} under DEEPSPEED: periodic checkpoints cannot gather "
                "DeepSpeed's partitioned optimizer state; pass --checkpoint-every 0 (the run cannot resume), or "
                "shard with FSDP (configs/accelerate/8gpu-fsdp.yaml), whose runs checkpoint and resume")
    return None
