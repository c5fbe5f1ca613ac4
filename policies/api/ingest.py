"""The ingestion endpoints: ``POST clusters/<cluster>/flows`` and ``POST clusters/<cluster>/inventory``.

Thin shells over ``policies.ingestion``, which reads the body under the upload limit. DRF does not parse the body:
``RawBody`` hands the request's stream over unread, whatever its content type, and a Content-Length over the limit
is refused before a byte is read. ``?format=`` names the flow format here, so DRF's own use of it (choosing a
renderer) is turned off for these views.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException, UnsupportedMediaType, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from policies import ingestion
from policies.api import serializers as s
from policies.api.views import PROBLEMS, Base, _query

# ------------------------------------------------------------------------------------------ input, output


class FlowsQuery(serializers.Serializer):
    format = serializers.ChoiceField(choices=sorted(ingestion.FORMATS), default="hubble",
                                     help_text="hubble: `hubble observe -o jsonpb` (or `-o json`) lines; "
                                               "netsec: netsec JSON lines")
    batch = serializers.CharField(required=False, max_length=ingestion.MAX_KEY_LENGTH,
                                  help_text="the batch's id, for clients that cannot send an Idempotency-Key")


class InventoryQuery(serializers.Serializer):
    partial = serializers.BooleanField(required=False, default=False,
                                       help_text="the dump is not the whole cluster: add and update, delete nothing")
    batch = serializers.CharField(required=False, max_length=ingestion.MAX_KEY_LENGTH,
                                  help_text="the batch's id, for clients that cannot send an Idempotency-Key")


class LineErrorOut(serializers.Serializer):
    line = serializers.IntegerField()
    field = serializers.CharField(help_text="the field, '' when the line is not JSON at all")
    message = serializers.CharField()


REPLAYED = "true: a batch with this key was taken before; this is its answer, and nothing was stored now"


class FlowsIngestedOut(serializers.Serializer):
    lines = serializers.IntegerField(help_text="lines read: stored + duplicates + skipped + malformed")
    stored = serializers.IntegerField(help_text="new raw flows")
    duplicates = serializers.IntegerField(help_text="events stored before, or twice in the body")
    skipped = serializers.IntegerField(help_text="blank lines, and events that are not flows")
    malformed = serializers.IntegerField()
    errors = LineErrorOut(many=True, help_text=f"the first {ingestion.MAX_ERRORS} malformed lines")
    replayed = serializers.BooleanField(help_text=REPLAYED)
    aggregation = serializers.ChoiceField(choices=["queued", "done"],
                                          help_text="done: ran before the answer; queued: a worker runs it")


class KindCountsOut(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    deleted = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class InventoryImportedOut(serializers.Serializer):
    objects = serializers.IntegerField(help_text="objects of the kinds netsec keeps")
    mode = serializers.CharField(help_text="full or partial")
    kinds = serializers.DictField(child=KindCountsOut(), help_text="per kind, as import_inventory prints them")
    ignored = serializers.DictField(child=serializers.IntegerField(), help_text="kinds skipped, with counts")
    addresses_opened = serializers.IntegerField()
    addresses_closed = serializers.IntegerField()
    placeholders = serializers.ListField(child=serializers.CharField(),
                                         help_text=f"owners missing from the dump, kept as placeholders (the first "
                                                   f"{ingestion.MAX_ERRORS})")
    replayed = serializers.BooleanField(help_text=REPLAYED)


# ------------------------------------------------------------------------------------------------- views


class RawBody(BaseParser):
    """Any content type: the request's stream itself, unread, for the service to read under the size limit."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream


class FormatIsOurs(DefaultContentNegotiation):
    """Content negotiation by the Accept header only: ``?format=`` is the flow format, not a renderer."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


class PayloadTooLarge(APIException):
    status_code = 413
    default_code = "too_large"


HEADERS = [
    OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER,
                     description="a key of the batch (up to 200 characters): a retry with the same key and body "
                                 "stores nothing and answers the first answer"),
    OpenApiParameter("Content-Encoding", str, OpenApiParameter.HEADER, enum=["gzip", "x-gzip", "identity"],
                     description="gzip: the body is compressed (a body that starts as gzip does is unzipped anyway)"),
]
UPLOAD_PROBLEMS = {
    **PROBLEMS,
    413: OpenApiResponse(s.ProblemOut, "the body, or what it decompresses to, passes NETSEC_MAX_UPLOAD_BYTES"),
    415: OpenApiResponse(s.ProblemOut, "a Content-Encoding other than gzip"),
}


# A dump: a List (or a typed list such as PodList), one object, or a bare list of objects; YAML may hold
# several documents of these.
DUMP = {"oneOf": [{"type": "object", "description": "a List, a typed list or one object"},
                  {"type": "array", "items": {"type": "object"}, "description": "objects"}]}


class Upload(Base):
    parser_classes = [RawBody]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FormatIsOurs
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, ScopedRateThrottle]
    throttle_scope = "ingest"

    def upload(self, request: Request, batch: str | None) -> dict[str, Any]:
        """What the service functions take from the request: body, key and gzipped."""
        limit = settings.NETSEC_MAX_UPLOAD_BYTES
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > limit:
            raise ingestion.TooLarge(limit)
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip"):
            raise UnsupportedMediaType(encoding, f"Content-Encoding: {encoding!r} is not supported; send gzip or "
                                                 "an uncompressed body")
        key = request.headers.get("Idempotency-Key")
        if key and batch and key.strip() != batch.strip():
            raise ValidationError({"batch": ["differs from the Idempotency-Key: send one of them"]})
        data = request.data  # RawBody's stream; {} when there is no body at all
        return {"body": data if hasattr(data, "read") else b"", "key": key or batch,
                "gzipped": encoding in ("gzip", "x-gzip")}

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ingestion.TooLarge):
            exc = PayloadTooLarge(str(exc))
        return super().handle_exception(exc)


class Flows(Upload):
    @extend_schema(
        parameters=[FlowsQuery, *HEADERS],
        request={"application/x-ndjson": OpenApiTypes.STR, "application/octet-stream": OpenApiTypes.BINARY},
        responses={200: FlowsIngestedOut, **UPLOAD_PROBLEMS},
        summary="Ingest flow events, one JSON object a line (Admins); aggregation follows",
    )
    def post(self, request: Request, cluster: str) -> Response:
        query = _query(FlowsQuery, request)
        answer = ingestion.ingest_flows(request.user, cluster, fmt=query["format"],
                                        **self.upload(request, query.get("batch")))
        return Response(FlowsIngestedOut(answer).data)


class Inventory(Upload):
    @extend_schema(
        parameters=[InventoryQuery, *HEADERS],
        request={"application/yaml": DUMP, "application/json": DUMP, "application/octet-stream": OpenApiTypes.BINARY},
        responses={200: InventoryImportedOut, **UPLOAD_PROBLEMS},
        summary="Import a `kubectl get ... -o yaml|json` dump as the cluster's inventory (Admins), all or nothing",
    )
    def post(self, request: Request, cluster: str) -> Response:
        query = _query(InventoryQuery, request)
        answer = ingestion.ingest_inventory(request.user, cluster, partial=query["partial"],
                                            **self.upload(request, query.get("batch")))
        return Response(InventoryImportedOut(answer).data)
