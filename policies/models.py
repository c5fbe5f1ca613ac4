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


class ApiToken(models.Model):
    """A user's key for integrations (design §8): shown once when made, kept only as a SHA-256 digest."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="the start of the token, to recognise it")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the whole token")
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user", "-created"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"


class AuditEvent(models.Model):
    """Who changed what, when, and through what (the page, the API or a command): design §9, issue 8."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    actor = models.CharField(max_length=150, help_text="the user's name when it happened ('system': a command)")
    via = models.CharField(max_length=10, choices=[("page", "page"), ("api", "API"), ("command", "command")])
    action = models.CharField(max_length=40, db_index=True, help_text="e.g. draft.set_mode, alias.saved")
    target = models.CharField(max_length=300)
    cluster = models.CharField(max_length=63, blank=True)
    namespace = models.CharField(max_length=253, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["cluster", "namespace", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"

    def as_json(self) -> dict:
        return {"at": self.at.isoformat(), "actor": self.actor, "via": self.via, "action": self.action,
                "target": self.target, "cluster": self.cluster, "namespace": self.namespace, "details": self.details}
