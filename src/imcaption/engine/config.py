"""Training configurations as frozen dataclasses: one default per option, help text beside it, and the rule
for which options a resumed run may change.

A task's config holds its own options and a `loop: LoopConfig` with the task's defaults for the shared ones.
Command-line options are made from these fields (imcaption.cli.common.add_config_options), so each default lives
in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

Config = TypeVar("Config")


NOT_GIVEN = object()


def option(default: Any, help: str, *, choices: tuple[str, ...] | None = None, on_resume: bool = False,
           saved_before: Any = NOT_GIVEN) -> Any:  # fmt: skip
    """A config field with its help text. `on_resume`: a resumed run may change it (it moves no step of the
    schedule and no sample of the data order: threads, device, where to stop, how many checkpoints to keep).
    `saved_before`: the value a run saved before the field existed trained with, when that is not the default."""
    metadata = {"help": help, "choices": choices, "on_resume": on_resume, "saved_before": saved_before}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class LoopConfig:
    """What every task's training shares: schedule, optimizer, cadence, hardware."""

    epochs: int = option(10, "passes over the training set (ignored with --minutes)")
    minutes: float = option(
        0.0,
        "train for this many minutes of wall time instead of --epochs: the learning rate decays to its floor "
        "exactly when the time is up, measured as training goes; 0: train for --epochs",
    )
    val_subset: int = option(
        2000,
        "with --minutes: validate on a fixed random sample of N validation images during training, on all at the end",
    )
    batch_size: int = option(128, "images per step")
    lr: float = option(3e-3, "peak learning rate (AdamW)")
    weight_decay: float = option(0.01, "AdamW weight decay")
    warmup_steps: int = option(300, "linear warmup steps before the cosine decay")
    grad_clip: float = option(2.0, "clip the gradient norm to this")
    seed: int = option(0, "seed of the weights, the data order and the augmentation")
    ema: float = option(
        0.0,
        "validate and save an exponential moving average of the weights with this decay per step (e.g. 0.999) "
        "instead of the last step's weights; 0: none",
    )
    eval_every: int = option(
        0, "steps between validations; 0: once per epoch (with --minutes: 12 times over the budget)", on_resume=True
    )
    max_steps: int = option(0, "stop after this many steps (the schedule stays that of all epochs); 0: no limit",
                            on_resume=True)  # fmt: skip
    keep: int = option(3, "step-N checkpoints to keep beside best.pt and last.pt", on_resume=True)
    threads: int = option(0, "torch CPU threads; 0: torch's default (all cores)", on_resume=True)
    device: str = option("cpu", "cpu, cuda or cuda:N", on_resume=True)
    precision: str = option(
        "auto",
        "number format of the training forward pass: bf16 (mixed, weights stay fp32), fp32, or auto: bf16 where "
        "the processor has it in hardware (AMX / AVX-512 BF16 CPUs, recent GPUs), else fp32",
        choices=("auto", "fp32", "bf16"),
        on_resume=True,
        saved_before="fp32",
    )


def config_fields(config: Any) -> dict[str, dataclasses.Field]:
    """The options of a task config, flattened: its own fields and those of its nested configs."""
    found: dict[str, dataclasses.Field] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        found.update(config_fields(value) if dataclasses.is_dataclass(value) else {f.name: f})
    return found


def flat_values(config: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        values.update(flat_values(value) if dataclasses.is_dataclass(value) else {f.name: value})
    return values


def with_options(config: Config, changes: dict[str, Any]) -> Config:
    """`config` with flat option names replaced wherever they live; an unknown name is an error."""
    unknown = set(changes) - set(config_fields(config))
    if unknown:
        raise ValueError(f"unknown option(s) for {type(config).__name__}: {', '.join(sorted(unknown))}")
    replaced = {}
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            inner = {k: v for k, v in changes.items() if k in config_fields(value)}
            replaced[f.name] = with_options(value, inner) if inner else value
        elif f.name in changes:
            replaced[f.name] = changes[f.name]
    return dataclasses.replace(config, **replaced)  # type: ignore[type-var]


def config_from_dict(cls: type[Config], state: dict[str, Any]) -> Config:
    """A config saved as a dict; fields saved before they existed take the value those runs had (`saved_before`),
    else today's defaults."""
    default = cls()
    values = _saved_before(default, state)
    for f in dataclasses.fields(default):  # type: ignore[arg-type]
        if f.name not in state:
            continue
        nested = getattr(default, f.name)
        # A nested config starts from the task's own defaults for it (a captioner's loop is not a captcha's).
        values[f.name] = _nested_from_dict(nested, state[f.name]) if dataclasses.is_dataclass(nested) else state[f.name]
    return cls(**values)


def _nested_from_dict(default: Any, state: dict[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(default)}
    saved = {k: v for k, v in state.items() if k in known}
    return dataclasses.replace(default, **{**_saved_before(default, state), **saved})


def _saved_before(default: Any, state: dict[str, Any]) -> dict[str, Any]:
    return {
        f.name: f.metadata["saved_before"]
        for f in dataclasses.fields(default)
        if f.name not in state and f.metadata.get("saved_before", NOT_GIVEN) is not NOT_GIVEN
    }


def resume_config(saved: Config, requested: dict[str, Any]) -> Config:
    """The saved run's config with the options a resumed run may change applied. An option that would change
    the schedule or the data is refused, naming it, instead of being silently ignored or applied."""
    fields_by_name = config_fields(saved)
    saved_values = flat_values(saved)
    refused = [
        f"--{name.replace('_', '-')} {value} (the run has {saved_values[name]})"
        for name, value in requested.items()
        if value != saved_values[name] and not fields_by_name[name].metadata.get("on_resume")
    ]
    if refused:
        raise ValueError(
            "a resumed run keeps its saved configuration; cannot change "
            + ", ".join(refused)
            + ". Drop these options, or start a new run in another --out folder"
        )
    return with_options(saved, {k: v for k, v in requested.items() if fields_by_name[k].metadata.get("on_resume")})
