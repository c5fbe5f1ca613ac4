"""What every page shows of the signed-in user: their role (or that they hold namespace grants)."""

from __future__ import annotations

from django.http import HttpRequest

from flows import access


def role(request: HttpRequest) -> dict[str, str]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    roles = access.global_roles(user)
    for each in (access.Role.ADMIN, access.Role.EDITOR, access.Role.VIEWER):
        if each in roles:
            return {"role": each.label}
    return {"role": "namespace grants"}
