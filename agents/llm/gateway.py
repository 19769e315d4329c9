"""The model gateway: every model call of a run, whatever the tier, goes through `call`.

`call(capability, run=..., request=...)` resolves the agent's route (routing.py), serves it
from the template, local or remote tier, and writes a ledger row for every call. Paid
(remote) calls reserve their worst case against every budget first and settle after; an
opted-in response cache, scoped to the workspace and provider key, serves its exact repeats
for free. A JSON repair reserves again; a failure the provider billed is charged, and added
to the run's cost. A paid model with no price is not served (no cap could hold). A
generation the chosen tier cannot serve falls back down the tiers (remote → local model →
template) and says so in its answer; when nothing can serve it, `ModelNotConfigured` makes
the step wait with "no model configured for <capability>", never a silent fake.
"""

from __future__ import annotations

import dataclasses
import time
from decimal import Decimal
from typing import Any

from django.conf import settings

from agents.llm import budgets, providers, remote, routing
from agents.llm import cache as response_cache
from agents.llm.routing import Route
from agents.pipelines import PermanentError
from aios_site.chaos import chaos_point
from aios_site.core.errors import TransientError


class ModelNotConfigured(Exception):
    """Nothing can serve the capability; the run waits until a model is configured."""

    def __init__(self, capability: str, reasons: list[str]) -> None:
        detail = "; ".join(reasons)
        super().__init__(
            f"no model configured for {capability}" + (f": {detail}" if detail else "")
        )
        self.capability, self.reasons = capability, reasons


FREE = budgets.Reservation(Decimal("0"), [])
TIER_ORDER = ("remote", "local", "template")  # a generation falls back in this order
LANGUAGE_MODEL = "lingua"
INTENT_MODEL = "intent-centroids"


def _fallback_tiers(capability: str, route: Route) -> list[str]:
    """The route's tier, then the lower tiers that can serve the capability, in order."""
    tiers = routing.CAPABILITIES[capability].tiers
    return [tier for tier in TIER_ORDER[TIER_ORDER.index(route.tier) :] if tier in tiers]


def call(
    capability: str,
    *,
    run,
    request: dict[str, Any],
    cache_allowed: bool = True,
    on_delta: remote.OnDelta | None = None,
) -> dict[str, Any]:
    """Serves one request of a capability for a run; the answer names its tier and model."""
    chaos_point("before_model_call")
    route = _for_eval(
        run,
        routing.route_for(
            capability=capability,
            agent_policy=_agent_policy(run),
            workspace_policy=run.agent.workspace.model_policy or {},
        ),
    )
    if capability == "embed":
        return _embed(run, request)
    if capability == "detect_language":
        return _detect_language(run, request)
    if capability == "classify" and route.tier == "local":
        return _classify_cascade(run, request, route, cache_allowed)
    return _generate(capability, route, run, request, cache_allowed, on_delta)


def _agent_policy(run) -> dict[str, Any]:
    """The agent's tier policy; an eval's own, capability by capability, over it."""
    policy = run.agent.model_policy or {}
    if run.trigger == "eval" and run.input.get("eval_tier_policy"):
        policy = {**policy, **run.input["eval_tier_policy"]}
    return policy


def _for_eval(run, route: Route) -> Route:
    """An eval's run names the provider it measures (every remote call goes to it)."""
    provider = run.input.get("eval_provider") if run.trigger == "eval" else None
    return dataclasses.replace(route, provider=provider) if provider else route


def _local_only(run) -> bool:
    """An eval of the local tier alone: no remote model is asked, whatever is configured."""
    return run.trigger == "eval" and bool(run.input.get("eval_local_only"))


# -- local analysis -----------------------------------------------------------------------------


def _texts(request: dict[str, Any]) -> list[str]:
    texts = request.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise PermanentError("this capability takes `texts`, a list of strings")
    return texts


def _timed_free(run, *, model: str, tier: str, work) -> Any:
    """A call that costs nothing still gets its ledger row (tier, latency, tokens if any)."""
    started = time.perf_counter()
    result = work()
    usage = (result.get("usage") if isinstance(result, dict) else None) or {}
    _record_free(run, model=model, tier=tier, usage=usage, started=started)
    return result


def _record_free(run, *, model: str, tier: str, usage: dict, started: float, **flags) -> None:
    budgets.settle_and_record(
        FREE,
        run=run,
        model=model,
        tier=tier,
        usage=usage,
        cost=Decimal("0"),
        latency_ms=(time.perf_counter() - started) * 1000,
        **flags,
    )


def embed_for_storage(texts: list[str]) -> list[list[float]]:
    """Vectors for memory's columns and queries, outside any run: always the local
    embedding model, because stored and query vectors must come from one model and fit
    `vector(EMBEDDING_DIMENSIONS)`. No ledger row: it costs nothing and has no run."""
    from agents.llm import local

    return local.embed(texts)


def _embed(run, request) -> dict[str, Any]:
    from agents.llm import local

    texts = _texts(request)
    vectors = _timed_free(
        run, model=local.EMBEDDING_MODEL, tier="local", work=lambda: local.embed(texts)
    )
    return {"vectors": vectors, "model": local.EMBEDDING_MODEL, "tier": "local", "cost": "0"}


def _detect_language(run, request) -> dict[str, Any]:
    from agents.llm import local

    texts, default = _texts(request), request.get("default", "en")
    results = _timed_free(
        run,
        model=LANGUAGE_MODEL,
        tier="local",
        work=lambda: local.detect_language(texts, default=default),
    )
    return {"results": results, "model": LANGUAGE_MODEL, "tier": "local", "cost": "0"}


def _classify(run, request) -> dict[str, Any]:
    from agents.llm import intents

    texts = _texts(request)
    model = intents.workspace_model(run.workspace_id)
    if model is None:
        raise ModelNotConfigured(
            "classify",
            ["this workspace has no intent examples (the Models page, or `aios intents seed`)"],
        )
    threshold = float(request.get("threshold", intents.DEFAULT_THRESHOLD))
    results = _timed_free(
        run,
        model=INTENT_MODEL,
        tier="local",
        work=lambda: intents.classify(model, texts, threshold=threshold),
    )
    return {"results": results, "model": INTENT_MODEL, "tier": "local", "cost": "0"}


def _classify_cascade(run, request, route: Route, cache_allowed: bool) -> dict[str, Any]:
    """The local classifier first; the texts it is not sure of (below `intents.CONFIDENT`)
    go to the remote small model, constrained to the workspace's intents or "unknown".

    Where the two agree, the local confidence stands and the answer says the remote model
    confirmed it; where they differ, the remote model's intent is taken with no confidence
    (nothing is calibrated for it, so no rule that asks for a confidence lets it out). With
    no remote model, or none reachable, affordable or answering sense now, the local guess
    stands with its low confidence and a person decides: classification never makes a run
    wait or fail."""
    from agents.llm import intents

    answer = _classify(run, request)
    unsure = [
        index
        for index, result in enumerate(answer["results"])
        if result["confidence"] < intents.CONFIDENT
    ]
    if not unsure:
        return answer
    second = Route("remote", role="small", provider=route.provider)
    # No repair request: a second opinion that is not the JSON asked for is no opinion, and
    # a repair would hand the model's own (perhaps steered) words back to it.
    ask = {"texts": [request["texts"][index] for index in unsure], "repair": False}
    try:
        opinion = _generate("classify", second, run, ask, cache_allowed, None)
    except (
        ModelNotConfigured,
        budgets.BudgetReached,
        TransientError,  # a slow or unreachable endpoint: replies do not wait for it
        PermanentError,  # a refused address, a 4xx, an answer that is not the JSON asked for
    ) as error:
        answer["second_opinion"] = {"asked": False, "reason": str(error)}
        return answer
    if opinion.get("tier") != "remote":  # the remote tier could not serve; a fallback did
        reasons = (opinion.get("fallback") or {}).get("reasons") or []
        answer["second_opinion"] = {"asked": False, "reason": "; ".join(reasons)}
        return answer
    for index, remote_result in zip(unsure, opinion["results"], strict=True):
        answer["results"][index] = _combined(answer["results"][index], remote_result["intent"])
    answer["second_opinion"] = {"asked": True, "model": opinion.get("model"), "count": len(unsure)}
    answer["cost"] = opinion.get("cost", "0")
    return answer


def _combined(local_result: dict[str, Any], remote_intent: str) -> dict[str, Any]:
    from agents.llm import intents

    if remote_intent == local_result["intent"]:
        return {**local_result, "confirmed_by": "remote"}
    if remote_intent == intents.UNKNOWN:
        # "None of these" from the second opinion is no opinion: the local guess stands with
        # its low confidence, which no calibrated rule lets out alone.
        return {**local_result, "remote_said": remote_intent}
    return {
        "intent": remote_intent,
        "confidence": None,
        "classified_by": "remote",
        "local_intent": local_result["intent"],
        "local_confidence": local_result["confidence"],
    }


# -- generation ---------------------------------------------------------------------------------


def _generate(capability, route: Route, run, request, cache_allowed, on_delta) -> dict[str, Any]:
    if capability == "classify":
        request = _classify_request(run, request)
    reasons: list[str] = []
    # A request with a template and nothing for a model asks for the template itself.
    template_only = (
        bool(request.get("template"))
        and "messages" not in request
        and "template" in routing.CAPABILITIES[capability].tiers
    )
    tiers = ["template"] if template_only else _fallback_tiers(capability, route)
    for tier in tiers:
        answer = _TIERS[tier](route, run, request, cache_allowed, on_delta, reasons)
        if answer is not None:
            if tier != route.tier and not template_only:
                answer["fallback"] = {"from": route.tier, "reasons": reasons}
            if capability == "classify":
                answer["results"] = _classifications(answer, request)
            return answer
    raise ModelNotConfigured(capability, reasons)


def _remote(route, run, request, cache_allowed, on_delta, reasons) -> dict[str, Any] | None:
    if _local_only(run):
        reasons.append("this eval measures the local tier alone")
        return None
    endpoint = providers.endpoint_for(workspace=run.agent.workspace, provider=route.provider)
    if endpoint is None:
        reasons.append(
            f"no provider named {route.provider!r}"
            if route.provider
            else "no remote endpoint (AIOS_LLM_BASE_URL, or a provider on the Models page)"
        )
        return None
    model = endpoint.model(route.role)
    if not model:
        reasons.append(f"provider {endpoint.name!r} has no {route.role} model")
        return None
    if budgets.price_for(workspace_id=run.workspace_id, model=model) is None:
        reasons.append(no_price(model))
        return None
    messages = _messages(request)
    if messages is None:
        reasons.append("the request has no messages for a model")
        return None
    params = _params(request)
    use_cache = cache_allowed and (route.cache or bool(request.get("cache")))
    return chat(
        run=run,
        endpoint=endpoint,
        model=model,
        messages=messages,
        cache=use_cache,
        on_delta=on_delta,
        **params,
    )


def _local(route, run, request, cache_allowed, on_delta, reasons) -> dict[str, Any] | None:
    from agents.llm import local_lm

    messages = _messages(request)
    if not local_lm.is_configured():
        reasons.append("no local model (AIOS_LOCAL_LM_PATH)")
        return None
    if messages is None:
        reasons.append("the request has no messages for a model")
        return None
    params = _params(request)
    answer = _timed_free(
        run,
        model=local_lm.model_name(),
        tier="local",
        work=lambda: local_lm.generate(
            messages,
            max_tokens=params["max_tokens"],
            temperature=params.get("temperature", 0.0),
        ),
    )
    return {**answer, "tier": "local", "cost": "0"}


def _template(route, run, request, cache_allowed, on_delta, reasons) -> dict[str, Any] | None:
    from agents.llm import templating

    name = request.get("template")
    if not name:
        reasons.append("no template for this request")
        return None
    language = request.get("language") or "en"
    answer = _timed_free(
        run,
        model=f"template:{name}",
        tier="template",
        work=lambda: templating.render(name, request.get("context") or {}, language),
    )
    return {**answer, "cost": "0"}


_TIERS = {"remote": _remote, "local": _local, "template": _template}


def _messages(request) -> list[dict[str, str]] | None:
    messages = request.get("messages")
    if messages is None:
        return None
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
    ):
        raise PermanentError("`messages` must be a list of {role, content} objects")
    return messages


PASSED_PARAMS = ("max_tokens", "temperature", "top_p", "seed", "stop", "json_output", "repair")


def _params(request) -> dict[str, Any]:
    params = {key: request[key] for key in PASSED_PARAMS if key in request}
    params.setdefault("max_tokens", settings.AIOS_LLM_DEFAULT_MAX_TOKENS)
    return params


# -- classification by a model ------------------------------------------------------------------


def _classify_request(run, request) -> dict[str, Any]:
    """A JSON-mode prompt listing the labels; the texts go in as data blocks."""
    from agents.llm import intents, untrusted

    texts = _texts(request)
    labels = request.get("labels")
    if not labels:
        model = intents.workspace_model(run.workspace_id)
        labels = list(model.labels) if model else []
    if not labels:
        raise ModelNotConfigured("classify", ["no labels given and no intent examples"])
    messages = untrusted.data_messages(
        instructions="You classify customer messages. Allowed intents: "
        + ", ".join(labels)
        + '. Answer with a JSON object {"intents": [...]}, one intent per message in '
        'order, or "unknown" when none fits.',
        data={f"message {i + 1}": text for i, text in enumerate(texts)},
    )
    return {**request, "messages": messages, "json_output": True, "labels": labels}


def _classifications(answer, request) -> list[dict[str, Any]]:
    given = (answer.get("json") or {}).get("intents") or []
    allowed = set(request["labels"])
    results = []
    for index in range(len(request["texts"])):
        label = given[index] if index < len(given) else None
        results.append({"intent": label if label in allowed else "unknown", "confidence": None})
    return results


# -- the paid call ------------------------------------------------------------------------------


def no_price(model: str) -> str:
    return (
        f"no price for model {model} (a budget cannot hold: set its price, or a default "
        "price, on the Models page)"
    )


def chat(
    *,
    run,
    endpoint: remote.Endpoint,
    model: str,
    messages: list[dict[str, str]],
    cache: bool = False,
    on_delta: remote.OnDelta | None = None,
    **params: Any,
) -> dict[str, Any]:
    """A paid chat completion for a run: budget reserved first, settled and ledgered after.

    With `cache` (opt-in; never for steps that propose effects), an identical earlier
    request of the same workspace and provider key is answered from Redis at no cost, and
    the ledger records the hit. A JSON answer that does not parse gets one repair request,
    reserved and ledgered as a call of its own.
    """
    params.setdefault("max_tokens", settings.AIOS_LLM_DEFAULT_MAX_TOKENS)
    started = time.perf_counter()
    key = None
    if cache:
        key = response_cache.key(
            workspace_id=run.workspace_id,
            endpoint=endpoint,
            model=model,
            messages=messages,
            params=params,
        )
    if key and (hit := response_cache.get(key)) is not None:
        _record_free(
            run,
            model=hit["model"],
            tier="remote",
            usage=hit["usage"],
            started=started,
            cache_hit=True,
        )
        return {**hit, "cost": "0", "cache_hit": True}
    price = budgets.price_for(workspace_id=run.workspace_id, model=model)
    if price is None:
        raise ModelNotConfigured("a paid call", [no_price(model)])
    json_output = bool(params.pop("json_output", False))
    repair = bool(params.pop("repair", True))
    call = _PaidCall(run=run, endpoint=endpoint, model=model, price=price, params=params)
    answer, invalid = call.send(messages, on_delta, json_output=json_output)
    if invalid is not None and not repair:
        raise remote.InvalidStructuredOutput(f"not the JSON object asked for: {invalid}")
    if invalid is not None:
        answer = _repaired(call, messages, answer, invalid)
    answer = {**answer, "tier": "remote", "provider": endpoint.name, "requested_model": model}
    cost = answer.pop("cost")
    if key:
        response_cache.put(key, answer)
    return {**answer, "cost": str(cost)}


def _repaired(call: _PaidCall, messages, answer, invalid: ValueError) -> dict[str, Any]:
    """The one repair request, reserved on its own: the first answer is paid for already."""
    repair = remote.repair_messages(messages, answer["content"], invalid)
    repaired, again = call.send(repair, None, json_output=True, last=True)
    if again is not None:
        raise remote.InvalidStructuredOutput(
            f"no valid JSON object after a repair: {again}"
        ) from again
    usage = {
        key: answer["usage"].get(key, 0) + repaired["usage"].get(key, 0)
        for key in ("prompt_tokens", "completion_tokens")
    }
    cost = answer["cost"] + repaired["cost"]
    return {**repaired, "usage": usage, "cost": cost, "repaired": True}


class _PaidCall:
    """Requests to one model for one run, each reserved, settled and ledgered on its own."""

    def __init__(self, *, run, endpoint: remote.Endpoint, model: str, price, params) -> None:
        self.run, self.endpoint, self.model, self.price = run, endpoint, model, price
        self.params = params
        # A lease outlives the call's timeout; a stream renews it as its text arrives.
        self.lease = endpoint.timeout + budgets.LEASE_SECONDS

    def send(self, messages, on_delta, *, json_output: bool, last: bool = False):
        """(answer with its `cost`, the ValueError if its JSON did not parse)."""
        max_tokens = self.params["max_tokens"]
        reservation = budgets.reserve(
            agent=self.run.agent,
            amount=budgets.worst_case(self.price, messages, max_tokens),
            lease_seconds=self.lease,
        )
        started = time.perf_counter()  # the model's latency, not the budget's
        try:
            answer = remote.complete(
                self.endpoint,
                model=self.model,
                messages=messages,
                on_delta=self._renewing(on_delta, reservation),
                json_output=json_output,
                **self.params,
            )
        except BaseException as error:
            if remote.reached(error) and not remote.billed(error):
                # The provider answered with an error status: it bills nothing for that,
                # and the ledger still shows the call, and why it failed.
                zero = {"prompt_tokens": 0, "completion_tokens": 0}
                self._settle(reservation, self.model, zero, started, f"failed: {error}"[:500])
                raise
            if not remote.billed(error):  # refused, unreachable, or never sent
                budgets.settle(reservation, Decimal("0"))
                raise
            # Billed: charged what the server reported, else all it could have billed.
            reported = error.billed_usage  # type: ignore[attr-defined]
            worst = {
                "prompt_tokens": budgets.prompt_token_ceiling(messages),
                "completion_tokens": max_tokens,
                "estimated": True,
            }
            note = str(error) if reported else f"{error}: charged the reserved worst case"
            self._settle(reservation, self.model, reported or worst, started, note)
            raise
        invalid, note = None, ""
        if json_output:
            try:
                answer["json"] = remote.json_object(answer["content"])
            except ValueError as error:
                invalid = error
                note = (
                    f"no valid JSON object after a repair: {error}"
                    if last
                    else f"not a valid JSON object ({error}): repaired"
                )
        cost = self._settle(reservation, answer["model"], answer["usage"], started, note)
        return {**answer, "cost": cost}, invalid

    def _settle(self, reservation, model: str, usage, started: float, note: str) -> Decimal:
        """Settles and ledgers one request and charges it to the run, in one statement."""
        prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        cost = budgets.cost_of(self.price, prompt, completion)
        budgets.settle_and_record(
            reservation,
            run=self.run,
            model=model,
            tier="remote",
            usage=usage,
            cost=cost,
            latency_ms=(time.perf_counter() - started) * 1000,
            note=note,
        )
        return cost

    def _renewing(self, on_delta, reservation):
        if on_delta is None:
            return None
        renewed = [time.monotonic()]

        def forward(text: str) -> None:
            if time.monotonic() - renewed[0] > self.lease / 3:
                budgets.renew(reservation, lease_seconds=self.lease)
                renewed[0] = time.monotonic()
            on_delta(text)

        return forward


# -- what the UI shows --------------------------------------------------------------------------


def describe_routes(*, agent_policy: dict, workspace) -> list[dict[str, Any]]:
    """For each capability: the route the policy asks for and what will really serve it."""
    rows = []
    for name, capability in routing.CAPABILITIES.items():
        route = routing.route_for(
            capability=name, agent_policy=agent_policy, workspace_policy=workspace.model_policy
        )
        serving = _serving(name, route, workspace)
        if serving["ready"] and serving["tier"] != route.tier:
            fallback = f"no {route.tier} model: falls back to {serving['tier']}"
            serving["note"] = "; ".join(filter(None, [fallback, serving["note"]]))
        rows.append(
            {
                "capability": name,
                "description": capability.description,
                "route": route.as_json(),
                **serving,
            }
        )
    return rows


def _serving(name: str, route: Route, workspace) -> dict[str, Any]:
    from agents.llm import intents, local, local_lm

    if name == "embed":
        return {"tier": "local", "model": local.EMBEDDING_MODEL, "ready": True, "note": ""}
    if name == "detect_language":
        return {"tier": "local", "model": LANGUAGE_MODEL, "ready": True, "note": ""}
    if name == "classify" and route.tier == "local":
        ready = intents.workspace_model(workspace.pk) is not None
        note = "" if ready else "no intent examples yet"
        return {"tier": "local", "model": INTENT_MODEL, "ready": ready, "note": note}
    unpriced = ""  # a paid model without a price is a misconfiguration, never free
    for tier in _fallback_tiers(name, route):
        if tier == "remote":
            endpoint = providers.endpoint_for(workspace=workspace, provider=route.provider)
            model = endpoint.model(route.role) if endpoint else ""
            if model and budgets.price_for(workspace_id=workspace.pk, model=model) is None:
                unpriced = f"a budget cannot hold: no price for model {model} ({endpoint.name})"
            elif model:
                return {
                    "tier": "remote",
                    "model": f"{model} ({endpoint.name})",
                    "ready": True,
                    "note": "",
                }
        if tier == "local" and local_lm.is_configured():
            return {
                "tier": "local",
                "model": local_lm.model_name(),
                "ready": True,
                "note": unpriced,
            }
        if tier == "template":
            return {
                "tier": "template",
                "model": "templates",
                "ready": True,
                "note": "; ".join(filter(None, [unpriced, "only requests that have a template"])),
            }
    missing = unpriced or f"no model configured for {name}"
    return {"tier": "", "model": "", "ready": False, "note": missing}
