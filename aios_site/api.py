"""The one API of the project: /api/v1/, OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.db.models import ProtectedError
from ninja import NinjaAPI, Status

from agents.llm.routing import PolicyError
from agents.pipelines import InvalidInput, PermanentError
from agents.services import Conflict
from aios_site.accounts.auth import api_auth
from aios_site.accounts.schemas import HealthOut
from aios_site.errors import database_unavailable, validation_detail
from aios_site.health import health_report

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {
        "detail": {
            "title": "Detail",
            "description": "Why, in a sentence; for 422, one entry per field that is wrong.",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
        }
    },
    "required": ["detail"],
}
ERRORS = {
    400: "Refused: the input breaks a rule, named in `detail`",
    401: "No valid bearer token or session",
    403: "The caller's role may not do this (or a session's CSRF token is missing)",
    404: "No such object in the caller's workspace",
    409: "What the object is now does not allow it",
    413: "The upload is larger than the limit",
    422: "The input does not fit the schema; `detail` lists each problem",
}


class Api(NinjaAPI):
    """The NinjaAPI whose schema also documents the errors each operation answers with,
    all of them JSON `{"detail": …}`: what any authenticated call may get (400, 401, 403,
    404), 422 where there is input to check, 409 where something is changed, 413 where a
    file is uploaded."""

    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(**kwargs)
        schema["components"].setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                if operation.get("security"):
                    _document_errors(operation, writes=method != "get")
        return schema


def _document_errors(operation: dict, *, writes: bool) -> None:
    codes = [400, 401, 403, 404]
    if operation.get("parameters") or operation.get("requestBody"):
        codes.append(422)
    if writes:
        codes.append(409)
    if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
        codes.append(413)
    for code in codes:
        operation["responses"].setdefault(
            code,
            {
                "description": ERRORS[code],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )


api = Api(
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


@api.exception_handler(ProtectedError)
def still_referred_to(request, exc):
    """Deleting what other records keep (an agent's proposals stay for the audit trail)."""
    kinds = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
    detail = f"cannot be deleted while {', '.join(kinds)} refer to it"
    return api.create_response(request, {"detail": detail}, status=409)


@api.exception_handler(InvalidInput)
def input_unfit(request, exc):
    """Input the schema let through but the pipeline or the registry refuses: a run's input
    without a field its pipeline declares, an effector that does not exist."""
    return api.create_response(request, {"detail": exc.problems}, status=422)


@api.exception_handler(PermanentError)
@api.exception_handler(PolicyError)
def refused(request, exc):
    return api.create_response(request, {"detail": str(exc)}, status=400)


@api.exception_handler(ValidationError)
def invalid(request, exc):
    return api.create_response(request, {"detail": validation_detail(exc)}, status=400)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def database_down(request, exc):
    """The database is down or the connection was cut: 503, and the client may try again."""
    return database_unavailable(request)


@api.exception_handler(DataError)
def unstorable(request, exc):
    """A value PostgreSQL cannot hold (a NUL character in a text, say) is the client's."""
    reason = str(exc).strip().split("\n")[0]
    return api.create_response(request, {"detail": f"cannot be stored: {reason}"}, status=400)


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
