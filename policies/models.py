"""Drafts: what a user decided for one scope's policy (design §4), with their history."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from flows.models import Namespace


class Mode(models.TextChoices):
    CUSTOM = "custom", "Custom rows"
    BLOCK_ALL = "block-all", "Block all"
    ALLOW_NAMESPACE = "allow-namespace", "Allow all inside namespace"
    ALLOW_ALL = "allow-all", "Allow all"


class Direction(models.TextChoices):
    INGRESS = "ingress", "Ingress"
    EGRESS = "egress", "Egress"


class Draft(models.Model):
    """One per (cluster, namespace, scope kind, scope name). Absent until somebody changes something."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="drafts")
    scope_kind = models.CharField(max_length=20)
    scope_name = models.CharField(max_length=253)
    ingress_mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.CUSTOM)
    egress_mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.CUSTOM)
    namespace_labels = models.JSONField(
        default=dict,
        blank=True,
        help_text='Label chosen per peer namespace lacking kubernetes.io/metadata.name: {"ns": ["key", "value"]}',
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "scope_kind", "scope_name"], name="uniq_draft")]

    def __str__(self) -> str:
        return f"{self.scope_kind} {self.namespace}/{self.scope_name}"


class RowDecision(models.Model):
    """A row the user included or excluded, against the default of design §4."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="decisions")
    row_key = models.CharField(max_length=600, help_text="direction:peer:port/protocol")
    included = models.BooleanField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["draft", "row_key"], name="uniq_row_decision")]

    def __str__(self) -> str:
        return f"{self.row_key} {'included' if self.included else 'excluded'}"


class ManualRule(models.Model):
    """A rule added by hand, e.g. "allow egress to 203.0.113.0/24 on 443/TCP"."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="manual_rules")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    cidr = models.CharField(max_length=49)
    ports = models.CharField(max_length=200, blank=True, help_text="e.g. '443/TCP, 8000-8100/TCP'; empty = all")
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["direction", "cidr", "ports"]

    def __str__(self) -> str:
        return f"{self.direction} {self.cidr} {self.ports or 'all ports'}"


class DraftRevision(models.Model):
    """History: who changed what, and the whole draft after the change."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="revisions")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    summary = models.CharField(max_length=300)
    state = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.summary}"
