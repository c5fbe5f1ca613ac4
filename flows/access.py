"""Who may see and change what, in which namespaces (design §9): roles, namespace grants, one rule.

- Roles are Django groups, made on every installation by a migration: **Viewers** read, **Editors** also
  edit drafts and manual rules and download policies, **Admins** also manage aliases, CIDRs, clusters
  and grants. A member of a role group has the role in every namespace; a superuser has every role.
- A ``NamespaceGrant`` gives a user, or a group, one role in some namespaces only.
- A user with neither sees nothing.

The one rule is ``restrict(user, action)`` on the querysets of namespaces, workloads, communications,
network policies and drafts (``RestrictQuerySet``), built on ``namespace_ids`` below; cluster-wide data
(aliases, CIDR configuration, clusters) needs the role everywhere (``allowed_everywhere``). The command
line acts as ``SYSTEM``, which may do everything.
"""

from __future__ import annotations

from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.db import models

Action = Literal["view", "edit", "admin"]


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    EDITOR = "editor", "Editor"
    ADMIN = "admin", "Admin"


# The group that gives a role in every namespace (the names the role migration creates).
ROLE_GROUPS: dict[Role, str] = {Role.VIEWER: "Viewers", Role.EDITOR: "Editors", Role.ADMIN: "Admins"}
# The roles that may take each action.
ROLES_FOR: dict[str, frozenset[Role]] = {
    "view": frozenset(Role),
    "edit": frozenset({Role.EDITOR, Role.ADMIN}),
    "admin": frozenset({Role.ADMIN}),
}


class SystemUser:
    """The acting user of the command line and of periodic tasks: unrestricted, and no account of its own
    (what it changes is recorded without an author)."""

    is_superuser = True
    is_authenticated = True
    is_active = True
    pk = id = None
    username = "system"
    netsec_via = "command"  # where its changes come from, for the audit log

    def __str__(self) -> str:
        return self.username


SYSTEM = SystemUser()


def _check_action(action: str) -> None:
    if action not in ROLES_FOR:
        raise ValueError(f"action {action!r}: use one of {', '.join(ROLES_FOR)}")


def global_roles(user: Any) -> frozenset[Role]:
    """The roles a user has in every namespace (cached on the user object for the rest of the request)."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
        return frozenset()
    if user.is_superuser:
        return frozenset(Role)
    cached = getattr(user, "_netsec_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(role for role, group in ROLE_GROUPS.items() if group in names)
        user._netsec_roles = cached
    return cached


def allowed_everywhere(user: Any, action: Action) -> bool:
    _check_action(action)
    return bool(global_roles(user) & ROLES_FOR[action])


def namespace_ids(user: Any, action: Action) -> models.QuerySet | None:
    """The ids of the namespaces where ``user`` may take ``action``, as a subquery; None means every one."""
    from flows.models import Namespace, NamespaceGrant

    if allowed_everywhere(user, action):
        return None
    if not (getattr(user, "is_authenticated", False) and getattr(user, "is_active", True)) or user.pk is None:
        return Namespace.objects.none().values("pk")  # an inactive user has no grant; never match an empty one
    grants = NamespaceGrant.objects.filter(
        models.Q(user_id=user.pk) | models.Q(group__user=user.pk), role__in=ROLES_FOR[action]
    )
    return Namespace.objects.filter(grants__in=grants).values("pk")


def require_everywhere(user: Any, action: Action, what: str) -> None:
    """PermissionDenied unless the user has a role for ``action`` in every namespace (cluster-wide data)."""
    if not allowed_everywhere(user, action):
        raise PermissionDenied(f"{what} needs the {_needed(action)} role")


def require(user: Any, action: Action, namespace_id: int, what: str) -> None:
    """PermissionDenied unless the user may take ``action`` in that namespace."""
    from flows.models import Namespace

    if not Namespace.objects.restrict(user, action).filter(pk=namespace_id).exists():
        raise PermissionDenied(f"{what} needs the {_needed(action)} role in this namespace")


def _needed(action: str) -> str:
    """The least role that allows an action, for messages."""
    return min(ROLES_FOR[action], key=list(Role).index).label


class RestrictQuerySet(models.QuerySet):
    """A queryset that ``restrict(user, action)`` narrows to the namespaces where the user may act.

    ``namespace_paths`` are the lookups from a row to its namespace; a row is kept when any of them is an
    allowed namespace (a communication belongs to the namespaces of both ends).
    """

    namespace_paths: tuple[str, ...] = ("namespace",)

    def restrict(self, user: Any, action: Action = "view") -> RestrictQuerySet:
        ids = namespace_ids(user, action)
        if ids is None:
            return self
        condition = models.Q()
        for path in self.namespace_paths:
            condition |= models.Q(**{f"{path}__in": ids})
        return self.filter(condition)
