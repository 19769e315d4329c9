"""Error pages: JSON `{"detail": …}` under /api/, HTML elsewhere."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from pydantic import ValidationError as SchemaError


class Conflict(Exception):
    """The current state does not allow this (409): answering a run that is not waiting, a
    taken slug, reviewing an item that is not waiting for review."""


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not Found"}, status=404)
    return render(request, "shell/error.html", {"status": 404, "message": "Not found."}, status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """What Django refuses before a view runs: a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too
    many fields, a Host it does not serve."""
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
            return JsonResponse({"detail": f"the body is larger than {limit} KB"}, status=400)
        return JsonResponse({"detail": "Bad request"}, status=400)
    context = {"status": 400, "message": "Bad request."}
    return render(request, "shell/error.html", context, status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error"}, status=500)
    return render(
        request, "shell/error.html", {"status": 500, "message": "Something went wrong."}, status=500
    )


def validation_detail(error: ValidationError) -> str:
    """A model validation error as one line: "field: message; other: message"."""
    if hasattr(error, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(texts)}" for field, texts in error.message_dict.items()
        )
    return " ".join(error.messages)


def schema_message(error: SchemaError) -> str:
    """A schema's (pydantic's) validation error as one line: "field: message; …"."""
    parts = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "row"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


def error_detail(error: Exception) -> str:
    """Why something was refused, in one line a person can act on (pages and messages)."""
    if isinstance(error, ValidationError):
        return validation_detail(error)
    if isinstance(error, SchemaError):
        return schema_message(error)
    return str(error)
