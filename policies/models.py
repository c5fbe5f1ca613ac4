"""Drafts: what a user decided for one scope's policy (design §4), with their history."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from flows.access import RestrictQuerySet
from flows.models import Namespace
from policies import engine

DIRECTION_CHOICES = [(d, d.title()) for d in engine.DIRECTIONS]
MODE_CHOICES = list(engine.MODE_LABELS.items())


class Draft(models.Model):
    """One per (cluster, namespace, scope kind, scope name). Absent until somebody changes something."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="drafts")
    scope_kind = models.CharField(max_length=20)
    scope_name = models.CharField(max_length=253)
    ingress_mode = models.CharField(max_length=20, choices=MODE_CHOICES, default="custom")
    egress_mode = models.CharField(max_length=20, choices=MODE_CHOICES, default="custom")
    namespace_labels = models.JSONField(
        default=dict,
        blank=True,
        help_text='Label chosen per peer namespace lacking kubernetes.io/metadata.name: {"ns": ["key", "value"]}',
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "scope_kind", "scope_name"], name="uniq_draft")]

    def __str__(self) -> str:
        return f"{self.scope_kind} {self.namespace}/{self.scope_name}"


class RowDecision(models.Model):
    """A row the user included or excluded, against the default (``policies.drafts.default_included``)."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="decisions")
    row_key = models.CharField(max_length=600, help_text="CommunicationRow.key: direction:peer:port/protocol[:flags]")
    included = models.BooleanField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["draft", "row_key"], name="uniq_row_decision")]

    def __str__(self) -> str:
        return f"{self.row_key} {'included' if self.included else 'excluded'}"


class ManualRule(models.Model):
    """A rule added by hand, e.g. "allow egress to 203.0.113.0/24 on 443/TCP"."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="manual_rules")
    direction = models.CharField(max_length=8, choices=DIRECTION_CHOICES)
    cidr = models.CharField(max_length=49)
    ports = models.JSONField(
        default=list, blank=True, help_text='[{"port": 443, "end_port": null, "protocol": "TCP"}]; empty = all ports'
    )
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["direction", "cidr", "id"]

    def __str__(self) -> str:
        ports = ", ".join(str(engine.PortRange(**p)) for p in self.ports)
        return f"{self.direction} {self.cidr} {ports or 'all ports'}"


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
