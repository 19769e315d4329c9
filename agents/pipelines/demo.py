"""Small pipelines for the demo, the tests and the benchmarks."""

from __future__ import annotations

from typing import Any

from agents.pipelines import Pipeline, PipelineInput, escalate, finish, goto, register, step


@register
class Echo(Pipeline):
    """start → ask ("continue?") → finish with the input and the answer."""

    name = "demo.echo"

    @step()
    def start(self, ctx):
        return goto("ask", started_at=ctx.now(), luck=ctx.random(), input=ctx.input)

    @step()
    def ask(self, ctx):
        return escalate("continue?", resume="finish")

    @step()
    def finish(self, ctx):
        return finish({"input": ctx.state["input"], "answer": ctx.state["answer"]})


@register
class Noop(Pipeline):
    """Three steps that do nothing: the engine's own overhead."""

    name = "demo.noop"

    @step()
    def start(self, ctx):
        return goto("middle")

    @step()
    def middle(self, ctx):
        return goto("end")

    @step()
    def end(self, ctx):
        return finish({"steps": 3})


@register
class Slow(Pipeline):
    """Counts a call, then sleeps inside the same step: for killing a worker mid-step."""

    name = "demo.slow"

    class Input(PipelineInput):
        key: str
        seconds: float = 5

    @step()
    def start(self, ctx):
        count = ctx.tool("demo.count", key=ctx.input["key"])
        ctx.tool("demo.sleep", seconds=ctx.input.get("seconds", 5))
        return goto("done", count=count)

    @step()
    def done(self, ctx):
        return finish({"count": ctx.state["count"]})


@register
class Flaky(Pipeline):
    """A step whose second call fails transiently a planned number of times."""

    name = "demo.flaky"

    class Input(PipelineInput):
        key: str
        failures: int = 2

    @step(attempts=4, backoff=0.2, max_backoff=1.0)
    def start(self, ctx):
        count = ctx.tool("demo.count", key=ctx.input["key"])
        calls = ctx.tool("demo.flaky", key=ctx.input["key"], failures=ctx.input.get("failures", 2))
        return finish({"count": count, "flaky_calls": calls})


@register
class AskModel(Pipeline):
    """One model call through the context: for the gateway's tests and benchmarks."""

    name = "demo.ask_model"

    class Input(PipelineInput):
        question: str
        capability: str = "plan"
        cache: bool = False
        stream: bool = False

    @step(attempts=4, backoff=0.2, max_backoff=5.0)
    def start(self, ctx):
        answer = ctx.model(
            ctx.input.get("capability", "plan"),
            messages=[{"role": "user", "content": ctx.input["question"]}],
            json_output=ctx.input.get("json", False),
            cache=ctx.input.get("cache", False),
            stream=ctx.input.get("stream", False),
        )
        return finish(
            {
                "answer": answer.get("json", answer["content"]),
                "model": answer["model"],
                "tier": answer["tier"],
            }
        )


class ModelCallInput(PipelineInput):
    capability: str
    request: dict[str, Any] = {}


def _model_call(ctx):
    answer = ctx.model(ctx.input["capability"], **ctx.input.get("request", {}))
    return finish(answer)


@register
class ModelCall(Pipeline):
    """Any capability with any request, answered as the outcome: for trying tiers out."""

    name = "demo.model_call"
    Input = ModelCallInput

    @step(attempts=3, backoff=0.2, max_backoff=2.0)
    def start(self, ctx):
        return _model_call(ctx)


@register
class ModelCallProposing(Pipeline):
    """The same from a step that proposes effects: it never gets cached model answers."""

    name = "demo.model_call_proposing"
    Input = ModelCallInput

    @step(attempts=3, backoff=0.2, max_backoff=2.0, proposes=True)
    def start(self, ctx):
        return _model_call(ctx)


@register
class Recall(Pipeline):
    """Recalls memory for a query and finishes with what it found (keys and versions)."""

    name = "demo.recall"

    class Input(PipelineInput):
        query: str
        namespaces: list[str] | None = None

    @step(attempts=2, backoff=0.2)
    def start(self, ctx):
        found = ctx.recall(ctx.input["query"], namespaces=ctx.input.get("namespaces"))
        return finish({"sources": [f"{r['namespace']}/{r['key']}@{r['version']}" for r in found]})


@register
class Propose(Pipeline):
    """Proposes the change its input describes, waits for the decision, finishes with it."""

    name = "demo.propose"

    class Input(PipelineInput):
        effector: str
        target: str = ""
        payload: dict[str, Any] = {}
        rationale: str = ""
        sources: list[Any] | None = None

    @step(proposes=True)
    def start(self, ctx):
        return ctx.propose(
            ctx.input["effector"],
            target=ctx.input.get("target", ""),
            payload=ctx.input.get("payload", {}),
            rationale=ctx.input.get("rationale", ""),
            sources=ctx.input.get("sources"),
            resume="done",
        )

    @step()
    def done(self, ctx):
        return finish(ctx.state["decision"])


@register
class Loop(Pipeline):
    """Goes round again until a model says "done" (with no capability given, it never
    does): a runaway loop, which the step limit and the budgets must stop."""

    name = "demo.loop"

    class Input(PipelineInput):
        capability: str | None = None

    @step(attempts=2, backoff=0.2)
    def start(self, ctx):
        rounds = ctx.state.get("rounds", 0) + 1
        if capability := ctx.input.get("capability"):
            question = f"Round {rounds}: is anything left to do? Answer 'done' or 'more'."
            answer = ctx.model(capability, messages=[{"role": "user", "content": question}])
            if "done" in answer["content"].lower():
                return finish({"rounds": rounds})
        return goto("start", rounds=rounds)
