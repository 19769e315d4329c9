"""Error pages: JSON `{"detail": …}` under /api/, HTML elsewhere."""

from __future__ import annotations

import sys

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, ValidationError
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.decorators import sync_and_async_middleware
from pydantic import ValidationError as SchemaError

from aios_site.core.errors import Conflict as Conflict  # one hierarchy: aios_site/core/errors.py


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not Found"}, status=404)
    return render(request, "shell/error.html", {"status": 404, "message": "Not found."}, status=404)


class NulInQuery(BadRequest):
    """A query parameter holds a NUL character, which PostgreSQL cannot be asked about."""


@sync_and_async_middleware
def refuse_nul_in_query(get_response):
    """A NUL in a query parameter is a 400 for every page and API call. psycopg refuses one
    only when the query runs, which for a list may be while its answer is being written:
    then no view's error handling sees it, and it was a 500."""

    def check(request: HttpRequest) -> None:
        if any("\x00" in text for key, values in request.GET.lists() for text in (key, *values)):
            raise NulInQuery("a query parameter holds a NUL character")

    if iscoroutinefunction(get_response):

        async def middleware(request):
            check(request)
            return await get_response(request)

    else:

        def middleware(request):
            check(request)
            return get_response(request)

    return middleware


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """What Django refuses before a view runs: a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too
    many fields, a Host it does not serve, a NUL in a query parameter."""
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
            return JsonResponse({"detail": f"the body is larger than {limit} KB"}, status=400)
        if isinstance(exception, NulInQuery):
            return JsonResponse({"detail": str(exception)}, status=400)
        return JsonResponse({"detail": "Bad request"}, status=400)
    reason = f"Bad request: {exception}." if isinstance(exception, NulInQuery) else "Bad request."
    context = {"status": 400, "message": reason}
    return render(request, "shell/error.html", context, status=400)


DATABASE_UNAVAILABLE = "the database is unavailable; try again shortly"
RETRY_AFTER_SECONDS = 5


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 while the database is down or cut off: nothing is wrong with the request, and the
    client may send it again (the API's handler and the pages' both answer this)."""
    if _is_api(request):
        response: HttpResponse = JsonResponse({"detail": DATABASE_UNAVAILABLE}, status=503)
    else:
        # Rendered without the request: its context processors would ask the database again.
        message = "The database is unavailable for a moment. Try again shortly."
        page = render_to_string("shell/error.html", {"status": 503, "message": message})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while it handles the view's exception, which sys.exc_info() holds.
    if isinstance(sys.exc_info()[1], DatabaseOperationalError | DatabaseInterfaceError):
        return database_unavailable(request)
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
