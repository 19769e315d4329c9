"""The model gateway and its tiers. Pipelines reach it only as `ctx.model(capability, ...)`.

- routing.py: capabilities and the per-agent / per-workspace tier policy
- gateway.py: `call`, fallbacks, budgets, cache and the ledger around every call
- remote.py: OpenAI-compatible endpoints through the `openai` SDK; providers.py: which one
- local.py, local_lm.py, intents.py: the CPU tier; templating.py: the template tier
- budgets.py, cache.py, untrusted.py, batching.py: what every call shares

The names below are imported on first use, so the model-free modules (local.py,
batching.py) load without Django's models.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CAPABILITIES": "agents.llm.routing",
    "PolicyError": "agents.llm.routing",
    "Route": "agents.llm.routing",
    "ModelNotConfigured": "agents.llm.gateway",
    "call": "agents.llm.gateway",
    "chat": "agents.llm.gateway",
    "embed_for_storage": "agents.llm.gateway",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
