"""What the API's settings name (pagination, errors): kept apart from the views, which DRF's own
settings must not import while they load."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from policies.services import ScopeError


class Pagination(LimitOffsetPagination):
    """``?limit=`` (1 to 1000, default 100) and ``?offset=`` (from 0); anything else is a 400, not ignored."""

    default_limit = 100
    max_limit = 1000
    max_offset = 10**9

    def get_limit(self, request: Any) -> int:
        return _number(request, self.limit_query_param, 1, self.max_limit, self.default_limit)

    def get_offset(self, request: Any) -> int:
        return _number(request, self.offset_query_param, 0, self.max_offset, 0)


def _number(request: Any, name: str, least: int, most: int, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit() or not least <= int(raw) <= most:
        raise ValidationError({name: [f"a whole number from {least} to {most}"]})
    return int(raw)


class BadInput(APIException):
    status_code = 400
    default_code = "invalid"


class Forbidden(APIException):
    status_code = 403
    default_code = "permission_denied"


def _problems(detail: Any, field: str = "") -> list[str]:
    """A serializer's errors as "field: message" lines (``keys[2]: ...`` inside a list)."""
    if isinstance(detail, dict):
        return [line for key, value in detail.items()
                for line in _problems(value, key if key != "non_field_errors" else field)]
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [f"{field}: {item}" if field else str(item) for item in detail]
        return [line for index, item in enumerate(detail) for line in _problems(item, f"{field}[{index}]")]
    return [f"{field}: {detail}" if field else str(detail)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Errors as HTTP with one ``detail`` that names the field first: ScopeError 404, PermissionDenied 403,
    ValueError and a serializer's ValidationError 400."""
    if isinstance(exc, ValidationError):
        exc = BadInput("; ".join(_problems(exc.detail)))
    elif isinstance(exc, ScopeError):
        exc = NotFound(str(exc))
    elif isinstance(exc, PermissionDenied):
        exc = Forbidden(str(exc) or "you may not do that")
    elif isinstance(exc, ValueError):
        exc = BadInput(str(exc))
    return drf_exception_handler(exc, context)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The site's 404: JSON under /api/ (a path no route matches), the page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"{request.path}: no such API path"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """The site's 500: JSON under /api/, the page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "internal error: the server log has the details"}, status=500)
    return defaults.server_error(request)
