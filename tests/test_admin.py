"""Every model has an admin page, and the pages render for a superuser."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from tests import factories as f


def _inline_models() -> set[type]:
    return {inline.model for model_admin in admin.site._registry.values() for inline in model_admin.inlines}


def test_every_model_is_registered_or_inline():
    inlines = _inline_models()
    for app in ("flows", "policies"):
        for model in apps.get_app_config(app).get_models():
            assert admin.site.is_registered(model) or model in inlines, model


@pytest.mark.django_db
def test_changelists_render(admin_client, cluster):
    f.pod(cluster, f.workload(cluster, "shop", "Deployment", "web"), "web-1", "10.244.1.1")
    f.flow(cluster, "10.244.1.1", 40000, "203.0.113.1", 443)
    for app in ("flows", "policies"):
        for model in apps.get_app_config(app).get_models():
            if not admin.site.is_registered(model):
                continue
            url = reverse(f"admin:{app}_{model._meta.model_name}_changelist")
            assert admin_client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_searching_an_address_finds_the_ranges_that_contain_it(admin_client, cluster):
    from flows.models import CIDRConfig, IPAlias

    IPAlias.objects.create(name="partner", cidr="203.0.113.192/26")
    IPAlias.objects.create(name="elsewhere", cidr="198.51.100.0/24")
    CIDRConfig.objects.create(cidr="2001:db8::/32", category="External", label="docs-v6")
    page = admin_client.get(reverse("admin:flows_ipalias_changelist"), {"q": "203.0.113.200"}).content.decode()
    assert "partner" in page and "elsewhere" not in page
    page = admin_client.get(reverse("admin:flows_cidrconfig_changelist"), {"q": "2001:db8::7"}).content.decode()
    assert "docs-v6" in page
    # Plain text still searches names.
    assert "elsewhere" in admin_client.get(reverse("admin:flows_ipalias_changelist"), {"q": "elsew"}).content.decode()
