"""Model configuration of a workspace: providers, prices, the default tier policy, intents.

Every change that can make a model available resumes the runs waiting for one (a run whose
capability still cannot be served simply waits again).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F

from agents.llm import budgets, intents
from agents.llm.routing import policy_validate
from agents.models import ModelPrice, Provider
from agents.services.runs import waits_resume
from aios_site import netguard
from aios_site.core.actors import SETUP, Actor
from aios_site.core.audit import audit_record


def _providers_changed(workspace) -> None:
    """Processes cache provider lookups under this number; a new one makes them look again."""
    type(workspace).objects.filter(pk=workspace.pk).update(
        providers_version=F("providers_version") + 1
    )
    workspace.refresh_from_db(fields=["providers_version"])


def _changed(workspace_id: int) -> None:
    # In the same transaction as the change: a resumed run is enqueued only after both commit.
    waits_resume(workspace_id=workspace_id, kind="model")


@transaction.atomic
def provider_save(
    *,
    workspace,
    name: str,
    base_url: str,
    api_key: str | None = None,
    model_small: str = "",
    model_large: str = "",
    is_default: bool = False,
    max_concurrency: int | None = None,
    prices: dict[str, dict[str, Decimal]] | None = None,
    actor: Actor = SETUP,
    allow_private: bool | None = None,
) -> Provider:
    """Creates or updates a provider by name; `api_key=None` keeps the stored key. Its base
    URL must be a public address unless the settings allow others (`allow_private`: a URL
    the system made, a local model server it started)."""
    netguard.validate_url(base_url, field_name="base_url", allow_private=allow_private)
    provider = Provider.objects.filter(workspace=workspace, name=name).first() or Provider(
        workspace=workspace, name=name
    )
    before = _provider_shown(provider) if provider.pk else None
    if is_default:  # one default per workspace: the constraint would refuse a second
        Provider.objects.filter(workspace=workspace, is_default=True).exclude(
            pk=provider.pk
        ).update(is_default=False)
    provider.base_url, provider.is_default = base_url, is_default
    provider.model_small, provider.model_large = model_small, model_large
    provider.max_concurrency = max_concurrency
    if api_key is not None:
        provider.api_key = api_key
    provider.full_clean(exclude=["workspace", "api_key_encrypted"])
    provider.save()
    after = _provider_shown(provider) | {"key_changed": api_key is not None}
    _audit(workspace, actor, "provider.save", f"provider:{name}", before, after)
    for model, price in (prices or {}).items():
        price_set(workspace=workspace, model=model, actor=actor, **price)
    _providers_changed(workspace)
    _changed(workspace.pk)
    return provider


@transaction.atomic
def provider_delete(*, provider: Provider, actor: Actor) -> None:
    before = _provider_shown(provider)
    _audit(provider.workspace, actor, "provider.delete", f"provider:{provider.name}", before, None)
    provider.delete()
    _providers_changed(provider.workspace)


@transaction.atomic
def price_set(
    *,
    workspace,
    model: str,
    input_per_million: Decimal,
    output_per_million: Decimal,
    actor: Actor = SETUP,
) -> ModelPrice:
    """The workspace's own price for a model (over the installation's price for it), or
    with `model="*"` its default price for models without one. A run waiting for a price
    resumes."""
    if not model:
        raise ValueError("a price needs a model name")
    rates = {"input_per_million": input_per_million, "output_per_million": output_per_million}
    old = ModelPrice.objects.filter(workspace=workspace, model=model).values(*rates).first()
    price, _ = ModelPrice.objects.update_or_create(workspace=workspace, model=model, defaults=rates)
    _audit(workspace, actor, "price.set", f"price:{model}", old, rates)
    budgets.price_forget(workspace_id=workspace.pk, model=model)
    _changed(workspace.pk)
    return price


@transaction.atomic
def workspace_policy_set(*, workspace, policy: dict[str, Any], actor: Actor) -> dict[str, Any]:
    before = workspace.model_policy
    workspace.model_policy = policy_validate(policy)
    workspace.save(update_fields=["model_policy"])
    _audit(
        workspace, actor, "workspace.model_policy", "model_policy", before, workspace.model_policy
    )
    _changed(workspace.pk)
    return workspace.model_policy


def _audit(workspace, actor: Actor, action: str, object_id: str, before, after) -> None:
    audit_record(
        workspace_id=workspace.pk,
        actor=actor,
        action=action,
        object_type="models",
        object_id=object_id,
        before=before,
        after=after,
    )


def _provider_shown(provider: Provider) -> dict[str, Any]:
    """What the audit keeps of a provider: never its key, only whether it has one."""
    return {
        "base_url": provider.base_url,
        "model_small": provider.model_small,
        "model_large": provider.model_large,
        "is_default": provider.is_default,
        "max_concurrency": provider.max_concurrency,
        "has_key": bool(provider.api_key_encrypted),
    }


def intent_examples_add(*, workspace, examples: list[tuple[str, str]], source: str) -> int:
    added = intents.examples_add(workspace_id=workspace.pk, examples=examples, source=source)
    _changed(workspace.pk)
    return added


def intent_examples_seed(*, workspace) -> int:
    """The shipped Bitext examples, for a workspace that has none yet. The workspace row is
    locked meanwhile, so two seeds at once (a double click, a worker and the CLI) add one set.
    FOR NO KEY UPDATE: embedding the examples takes a while, and a plain FOR UPDATE would
    hold back every row written for the workspace meanwhile (a webhook event, a run: their
    foreign-key check at commit waits for it)."""
    with transaction.atomic():
        type(workspace).objects.select_for_update(no_key=True).filter(pk=workspace.pk).first()
        added = intents.examples_seed(workspace_id=workspace.pk)
        if added:
            _changed(workspace.pk)
    return added
