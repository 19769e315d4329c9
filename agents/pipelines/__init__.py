"""Pipelines: state machines whose steps are methods taking a StepContext.

A step returns exactly one transition:

    goto("next", **state)         continue at another step, merging `state`
    wait_for(kind, resume=..., …) wait for an outside event (an approval, a webhook …)
    escalate(question, resume=…)  wait for a person's answer
    finish(outcome)               end successfully
    fail(reason)                  end with an error

Everything nondeterministic goes through the context (`ctx.now()`, `ctx.random()`,
`ctx.tool()`, `ctx.model()`, `ctx.http()`), which journals it so a run can be resumed,
retried without paying twice, replayed and forked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import ValidationError as SchemaError
from pydantic_core import PydanticCustomError

# One error hierarchy for every app (aios_site/core/errors.py); named here too, for steps.
from aios_site.core.errors import TRANSIENT_ERRORS as TRANSIENT_ERRORS
from aios_site.core.errors import PermanentError as PermanentError
from aios_site.core.errors import TransientError as TransientError
from aios_site.core.errors import is_transient as is_transient

# -- transitions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    kind: str  # goto | wait | finish | fail
    target: str = ""
    updates: dict[str, Any] = field(default_factory=dict)
    outcome: Any = None
    reason: str = ""
    waiting_for: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.target:
            data["target"] = self.target
        if self.updates:
            data["updates"] = self.updates
        if self.kind == "finish":
            data["outcome"] = self.outcome
        if self.reason:
            data["reason"] = self.reason
        if self.waiting_for is not None:
            data["waiting_for"] = self.waiting_for
        return data


def goto(step: str, **state: Any) -> Transition:
    return Transition("goto", target=step, updates=state)


def wait_for(kind: str, *, resume: str, key: str, **details: Any) -> Transition:
    """Wait for an event of `kind`; it resumes the run at `resume` with its data in state[key]."""
    return Transition(
        "wait", target=resume, waiting_for={"kind": kind, "resume": resume, "key": key, **details}
    )


def escalate(question: str, *, resume: str, key: str = "answer") -> Transition:
    """Ask a person; the answer (POST /api/v1/runs/{id}/answer) lands in state[key]."""
    return wait_for("escalation", resume=resume, key=key, question=question)


def finish(outcome: Any = None) -> Transition:
    return Transition("finish", outcome=outcome)


def fail(reason: str) -> Transition:
    return Transition("fail", reason=reason)


# -- errors -----------------------------------------------------------------------------------

# The errors a step raises are the one hierarchy of aios_site/core/errors.py, imported above.


class InvalidInput(PermanentError, ValueError):
    """A run's input does not fit what its pipeline declares. `problems` has one entry per
    wrong field, shaped like the API's other 422 details (`loc` ends with the field)."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{'.'.join(map(str, p['loc'][2:]))}: {p['msg']}" for p in problems)
        )


class PipelineInput(BaseModel):
    """What a pipeline needs in its run's input. Fields it does not name are let through
    (a step may read optional extras), and the input is stored as sent, not as parsed, so a
    replay sees exactly what the first run saw."""

    model_config = ConfigDict(extra="allow")


def required_outside_evals(name: str, eval_name: str):
    """A validator for an input field that is required unless an eval gives `eval_name` in
    its place (declare `eval_name` first, and `name` with `Field(None, validate_default=True)`):
    a missing one is a 422 naming `name`, like any required field."""

    def check(cls, value, info):
        given = info.data.get(eval_name) is not None
        if value is None and not given:
            raise PydanticCustomError("missing", "Field required")
        if value is not None and given:
            raise PydanticCustomError("value_error", f"give {name} or {eval_name}, not both")
        return value

    return field_validator(name, mode="after")(check)


# -- steps and pipelines ----------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff: float = 1.0  # seconds before the second attempt; doubles after that
    max_backoff: float = 60.0
    on_error: str = "fail"  # "fail" or "escalate" when a permanent error or the last attempt fails


def step(
    *,
    attempts: int = 3,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    on_error: str = "fail",
    proposes: bool = False,
) -> Callable:
    """Marks a pipeline method as a step and sets its retry policy. A step that `proposes`
    effects never gets model answers from the response cache."""

    def mark(function: Callable) -> Callable:
        function.retry_policy = RetryPolicy(attempts, backoff, max_backoff, on_error)
        function.proposes = proposes
        return function

    return mark


DEFAULT_POLICY = RetryPolicy()


class Pipeline:
    name: ClassVar[str]
    # What it does for the shop, in the owner's words; blank: a developer's pipeline, shown
    # with the advanced ones.
    purpose: ClassVar[str] = ""
    # The model capabilities its steps call (agents/llm/routing.py), so the Agents page warns
    # only about the models it needs; None: it may call any.
    capabilities: ClassVar[tuple[str, ...] | None] = None
    first_step: ClassVar[str] = "start"
    # What one successful run replaces, in minutes of a person's work (editable per workspace).
    minutes_saved: ClassVar[float] = 0.0
    # The versioned prompts it writes with (agents/llm/prompts.py): an agent of it may choose
    # their versions, and an eval may try others.
    prompts: ClassVar[tuple[str, ...]] = ()
    # The fields its input must have; checked when a run is created, so a missing one is
    # the caller's 422 instead of a KeyError in a step.
    Input: ClassVar[type[PipelineInput]] = PipelineInput

    @classmethod
    def input_validate(cls, data: Any) -> None:
        try:
            cls.Input.model_validate(data)
        except SchemaError as error:
            raise InvalidInput(
                [
                    {
                        "type": problem["type"],
                        "loc": ["body", "payload", "input", *map(str, problem["loc"])],
                        "msg": problem["msg"],
                    }
                    for problem in error.errors()
                ]
            ) from error

    def step_function(self, step_name: str) -> Callable:
        function = getattr(self, step_name, None)
        if function is None or not hasattr(function, "retry_policy"):
            raise PermanentError(f"pipeline {self.name!r} has no step {step_name!r}")
        return function

    def retry_policy(self, step_name: str) -> RetryPolicy:
        return getattr(getattr(self, step_name, None), "retry_policy", DEFAULT_POLICY)

    def proposes(self, step_name: str) -> bool:
        return getattr(getattr(self, step_name, None), "proposes", False)

    @classmethod
    def steps(cls) -> list[str]:
        return [name for name, value in vars(cls).items() if hasattr(value, "retry_policy")]


_REGISTRY: dict[str, type[Pipeline]] = {}
# Modules that register pipelines when imported.
PIPELINE_MODULES = ["agents.pipelines.demo", "catalog.pipelines", "catalog.content.pipeline"]


def register(cls: type[Pipeline]) -> type[Pipeline]:
    _REGISTRY[cls.name] = cls
    return cls


def _load() -> None:
    for module in PIPELINE_MODULES:
        importlib.import_module(module)


def get_pipeline(name: str) -> Pipeline:
    _load()
    if name not in _REGISTRY:
        raise PermanentError(f"no pipeline named {name!r}")
    return _REGISTRY[name]()


def pipeline_names() -> list[str]:
    _load()
    return sorted(_REGISTRY)
