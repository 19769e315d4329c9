"""Capabilities and the tier policy that maps each one to a tier and a model role.

A pipeline asks for a capability (`ctx.model("draft", ...)`); the agent's policy, over the
workspace's defaults, over the built-in defaults, says which tier serves it:

    {"draft": {"tier": "remote", "role": "large", "provider": "qwen", "cache": false}}

Policies are data, validated whenever they are saved, so a typo is a 400, not a failed run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

TIERS = ("template", "local", "remote")
ROLES = ("small", "large")


@dataclass(frozen=True)
class Route:
    tier: str
    role: str = "small"
    provider: str = ""  # remote only; "" = the workspace's default provider
    cache: bool = False  # the exact-match response cache (remote only)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Capability:
    name: str
    tiers: tuple[str, ...]  # the tiers able to serve it
    default: Route
    description: str


CAPABILITIES: dict[str, Capability] = {}


def register_capability(capability: Capability) -> Capability:
    CAPABILITIES[capability.name] = capability
    return capability


for _capability in (
    Capability("embed", ("local",), Route("local"), "384-d vectors for search and memory"),
    Capability("classify", ("local", "remote"), Route("local"), "the intent of customer messages"),
    Capability("detect_language", ("local",), Route("local"), "the language of a text"),
    Capability(
        "draft",
        ("template", "local", "remote"),
        Route("remote", role="large"),
        "replies, descriptions and posts",
    ),
    Capability("plan", ("local", "remote"), Route("remote"), "structured decisions (JSON)"),
    Capability(
        "outline",
        ("template", "local", "remote"),
        Route("remote", role="small"),
        "the outline of a post, before it is drafted",
    ),
    Capability(
        "ideate",
        ("template", "local", "remote"),
        Route("remote", role="small"),
        "angles for a content brief",
    ),
):
    register_capability(_capability)


class PolicyError(ValueError):
    """A tier policy that cannot be applied; the message says what to change."""


def policy_validate(policy: Any) -> dict[str, dict[str, Any]]:
    """The policy normalised, or PolicyError naming the first problem."""
    if not isinstance(policy, dict):
        raise PolicyError("a tier policy is an object of capability -> route")
    return {name: _route_validate(name, route) for name, route in policy.items()}


def _route_validate(name: str, route: Any) -> dict[str, Any]:
    capability = CAPABILITIES.get(name)
    if capability is None:
        raise PolicyError(f"unknown capability {name!r}; known: {', '.join(CAPABILITIES)}")
    if not isinstance(route, dict):
        raise PolicyError(f"{name}: a route is an object like {{'tier': 'remote'}}")
    unknown = set(route) - {"tier", "role", "provider", "cache"}
    if unknown:
        raise PolicyError(f"{name}: unknown field(s) {', '.join(sorted(unknown))}")
    tier = route.get("tier", capability.default.tier)
    if tier not in capability.tiers:
        raise PolicyError(f"{name}: tier {tier!r} cannot serve it; use one of {capability.tiers}")
    if route.get("role", "small") not in ROLES:
        raise PolicyError(f"{name}: role must be one of {ROLES}")
    if not isinstance(route.get("provider", ""), str) or not isinstance(
        route.get("cache", False), bool
    ):
        raise PolicyError(f"{name}: provider is a name and cache is true or false")
    return dict(route)


def route_for(*, capability: str, agent_policy: dict, workspace_policy: dict) -> Route:
    """The agent's route over the workspace's over the built-in one, field by field."""
    known = CAPABILITIES.get(capability)
    if known is None:
        raise PolicyError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
    merged = {
        **known.default.as_json(),
        **workspace_policy.get(capability, {}),
        **agent_policy.get(capability, {}),
    }
    if merged["tier"] not in known.tiers:  # a stored policy from before a capability changed
        merged["tier"] = known.default.tier
    return Route(**{key: merged[key] for key in ("tier", "role", "provider", "cache")})
