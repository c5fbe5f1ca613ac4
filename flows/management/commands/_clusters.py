"""What the commands that take ``--cluster C [--create]`` share (not a command itself: the name starts with _)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from flows.models import Cluster, slug_validator


def cluster_or_creatable(name: str, *, create: bool) -> Cluster | None:
    """The cluster named ``name``; None when it does not exist yet and ``--create`` may make it under that name.

    Exits 1 for an unknown cluster without ``--create``, 2 for a name a cluster cannot have.
    """
    cluster = Cluster.objects.filter(name=name).first()
    if cluster is not None:
        return cluster
    if not create:
        raise CommandError(f"cluster {name!r} does not exist; create it in the admin or with --create", returncode=1)
    try:
        slug_validator(name)
    except ValidationError:
        raise CommandError(
            f"--cluster {name!r}: a cluster name is lower-case letters, digits and '-'", returncode=2
        ) from None
    return None
