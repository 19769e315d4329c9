"""The model gateway and its tiers. Pipelines reach it only as `ctx.model(capability, ...)`.

- routing.py: capabilities and the per-agent / per-workspace tier policy
- gateway.py: `call`, fallbacks, budgets, cache and the ledger around every call
- remote.py: OpenAI-compatible endpoints through the `openai` SDK; providers.py: which one
- local.py, local_lm.py, intents.py: the CPU tier; templating.py: the template tier
- budgets.py, cache.py, untrusted.py, batching.py: what every call shares
"""

from agents.llm.gateway import ModelNotConfigured, call, chat
from agents.llm.routing import CAPABILITIES, PolicyError, Route

__all__ = ["CAPABILITIES", "ModelNotConfigured", "PolicyError", "Route", "call", "chat"]
