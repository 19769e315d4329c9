"""What every /api/ request and answer is held to, whichever handler it reaches.

- A JSON body with a lone surrogate (`"\\ud800"`) in any string is a 422 naming where. Python
  decodes such an escape into a `str` that cannot be encoded again, so it passed most schema
  fields and failed later, as a 500, wherever the text met UTF-8 (a query, the database).
- A refusal (4xx) is JSON with a `detail`, also the ones Django or django-ninja answer
  before any of our handlers runs (405 for a method a path does not offer, say).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import sync_and_async_middleware

# The only way a surrogate gets into decoded JSON: a \uD800-\uDFFF escape (UTF-8 cannot
# carry one raw). Bodies without such an escape are not parsed a second time.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
KEPT_HEADERS = {"allow", "www-authenticate", "retry-after"}
# Webhook receivers read the raw, signed bytes themselves, under their own size limit, and
# answer a body they cannot store with a 400: the guard must not read the stream first.
RAW_BODY_PREFIX = "/api/v1/webhooks/"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _strings(value: Any, where: list[Any]) -> Iterator[tuple[list[Any], str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, [*where, key])
            yield from _strings(item, [*where, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, [*where, index])


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def surrogate_problems(request: HttpRequest) -> list[dict[str, Any]]:
    """One 422 entry per string of the JSON body that holds a lone surrogate."""
    if not request.content_type.endswith("json"):
        return []
    try:
        if not SURROGATE_ESCAPE.search(request.body):
            return []
        data = json.loads(request.body)
    except (RequestDataTooBig, ValueError):
        # Too large, a Content-Length that is no number, or not JSON at all: the view's
        # own checks answer those (413, 400, 422), as they did without this guard.
        return []
    return [
        {
            "type": "string_surrogate",
            "loc": ["body", *where],
            "msg": "holds a lone surrogate escape (\\ud800-\\udfff), which is not a character",
        }
        for where, text in _strings(data, [])
        if _has_surrogate(text)
    ]


def as_json_refusal(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """An API 4xx that is not JSON, as `{"detail": …}` with the same status and headers."""
    if not (400 <= response.status_code < 500) or response.get("Content-Type", "").startswith(
        "application/json"
    ):
        return response
    detail = HTTPStatus(response.status_code).phrase
    if response.status_code == 405:
        detail = f"{request.method} is not allowed here; allowed: {response.get('Allow', '')}"
    refusal = JsonResponse({"detail": detail}, status=response.status_code)
    for name, value in response.headers.items():
        if name.lower() in KEPT_HEADERS:
            refusal[name] = value
    return refusal


@sync_and_async_middleware
def api_guards(get_response):
    def refused(request: HttpRequest) -> HttpResponse | None:
        writes = _is_api(request) and request.method in {"POST", "PUT", "PATCH"}
        writes = writes and not request.path.startswith(RAW_BODY_PREFIX)
        if writes and (problems := surrogate_problems(request)):
            return JsonResponse({"detail": problems}, status=422)
        return None

    if iscoroutinefunction(get_response):

        async def middleware(request):
            response = refused(request) or await get_response(request)
            return as_json_refusal(request, response) if _is_api(request) else response

    else:

        def middleware(request):
            response = refused(request) or get_response(request)
            return as_json_refusal(request, response) if _is_api(request) else response

    return middleware
