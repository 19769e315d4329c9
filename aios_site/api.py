"""The one API of the project: /api/v1/, OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from ninja import NinjaAPI, Status

from agents.llm.routing import PolicyError
from agents.pipelines import PermanentError
from agents.services import Conflict
from aios_site.accounts.auth import api_auth
from aios_site.accounts.schemas import HealthOut
from aios_site.errors import validation_detail
from aios_site.health import health_report

api = NinjaAPI(
    title="AIOS API",
    version="1",
    urls_namespace="api",
    auth=api_auth,
    description="Bearer token (`aios token create`) or browser session with CSRF.",
)


@api.exception_handler(PermissionDenied)
def permission_denied(request, exc):
    return api.create_response(request, {"detail": str(exc) or "Forbidden"}, status=403)


@api.exception_handler(Conflict)
def conflict(request, exc):
    return api.create_response(request, {"detail": str(exc)}, status=409)


@api.exception_handler(PermanentError)
@api.exception_handler(PolicyError)
def refused(request, exc):
    return api.create_response(request, {"detail": str(exc)}, status=400)


@api.exception_handler(ValidationError)
def invalid(request, exc):
    return api.create_response(request, {"detail": validation_detail(exc)}, status=400)


@api.get(
    "/healthz",
    auth=None,
    response={200: HealthOut, 503: HealthOut},
    exclude_none=True,
    tags=["health"],
)
def healthz(request):
    """Database and Redis reachable, and how many Celery workers answer a ping."""
    status, report = health_report()
    return Status(status, report)


api.add_router("/", "aios_site.accounts.api.router")
api.add_router("/", "agents.api.router")
api.add_router("/", "memory.api.router")
api.add_router("/", "approvals.api.router")
api.add_router("/", "catalog.api.router")
api.add_router("/", "catalog.content.api.router")
