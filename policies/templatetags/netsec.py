"""Small formatting helpers of the network page: compact times, row ids, the activity strip."""

from __future__ import annotations

import hashlib
from datetime import datetime
from urllib.parse import urlencode

from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def ago(moment: datetime | None) -> str:
    """'now', '9 min ago', '5 h ago', '6 d ago'."""
    if moment is None:
        return "—"
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "now"


@register.filter
def thousands(number: int | None) -> str:
    """12408 → '12,408'."""
    return "—" if number is None else f"{number:,}"


@register.filter
def dom_id(key: str) -> str:
    """A stable HTML id for a row key (keys hold ':' and '/', and must not collide)."""
    return "r-" + hashlib.sha1(key.encode()).hexdigest()[:12]


@register.filter
def spark(activity: tuple[int, ...]) -> list[tuple[int, float, float]]:
    """(x, y, height) in a 16-high box of each slice with connections: the bars of the activity strip."""
    peak = max(activity, default=0)
    bars = []
    for i, count in enumerate(activity):
        if count:
            height = max(2.0, round(16 * count / peak, 1))
            bars.append((i, round(16 - height, 1), height))
    return bars


@register.filter
def spark_svg(activity: tuple[int, ...]) -> str:
    """The activity strip as SVG: the bars of ``spark`` in a box as wide as the strip (what ``_spark.html`` draws),
    made in one go rather than a template loop per bar, for the hundreds of rows a table renders."""
    bars = spark(activity)
    width = len(activity) or 1
    label = "connections over the span" if bars else "no connections"
    out = [f'<svg class="spark" viewBox="0 0 {width} 16" preserveAspectRatio="none" role="img" aria-label="{label}">'
           f'<rect class="base" x="0" y="15.4" width="{width}" height="0.6"></rect>']
    out.extend(f'<rect x="{x}" y="{y}" width="0.8" height="{h}"></rect>' for x, y, h in bars)
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - numbers and fixed text only


@register.simple_tag(takes_context=True)
def query(context: template.Context, **changes: str) -> str:
    """The current page's query string with some parameters changed (empty values dropped)."""
    params = dict(context.get("state", {}))
    params.update(changes)
    return "?" + urlencode({k: v for k, v in params.items() if v})
