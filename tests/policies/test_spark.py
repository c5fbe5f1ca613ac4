"""The activity strip drawn in Python is the markup the template loop drew, bar for bar."""

from __future__ import annotations

import random

from django.template import engines
from django.template.loader import render_to_string

LOOP = ('{% load netsec %}{% with bars=activity|spark %}<svg class="spark" viewBox="0 0 {{ activity|length|default:1 }}'
        ' 16" preserveAspectRatio="none" role="img" aria-label="{% if bars %}connections over the span{% else %}no '
        'connections{% endif %}"><rect class="base" x="0" y="15.4" width="{{ activity|length|default:1 }}" height="0.6"'
        '></rect>{% for x, y, h in bars %}<rect x="{{ x }}" y="{{ y }}" width="0.8" height="{{ h }}"></rect>'
        '{% endfor %}</svg>{% endwith %}\n')


def test_the_strip_is_the_markup_of_the_template_loop() -> None:
    loop = engines["django"].from_string(LOOP)
    rng = random.Random(3)
    for _ in range(200):
        activity = tuple(rng.choice([0, 0, 1, 5, 17, 300, 12345]) for _ in range(rng.choice([0, 1, 6, 25, 48])))
        assert render_to_string("policies/_spark.html", {"activity": activity}) == loop.render({"activity": activity})
