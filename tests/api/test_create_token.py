"""``manage.py create_token``: a token for scripted setups, only the token on stdout, audited as a command."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client

from policies.models import ApiToken, AuditEvent


@pytest.mark.django_db
def test_the_token_printed_works_and_is_audited(cluster):
    user = get_user_model().objects.create_user("exporter")
    user.groups.add(Group.objects.get(name="Admins"))
    out, err = io.StringIO(), io.StringIO()
    call_command("create_token", user="exporter", name="hubble-exporter", expires="2099-01-01T00:00:00Z",
                 stdout=out, stderr=err)
    secret = out.getvalue().strip()
    assert secret.startswith("nsk_") and "\n" not in secret and "not shown again" in err.getvalue()
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.expires_at.year) == (user, "hubble-exporter", 2099)
    response = Client(headers={"Authorization": f"Bearer {secret}"}).get("/api/v1/clusters/")
    assert response.status_code == 200 and response.json()["results"][0]["name"] == "test"
    event = AuditEvent.objects.get(action="token.created")
    assert (event.via, secret.split("_", 2)[2] in str(event.as_json())) == ("command", False)


@pytest.mark.django_db
@pytest.mark.parametrize(("options", "says", "code"), [
    ({"user": "nobody", "name": "x"}, "--user: 'nobody' does not exist", 1),
    ({"user": "ops", "name": " "}, "--name: give the token a name", 1),
    ({"user": "ops", "name": "x", "expires": "2001-01-01T00:00:00Z"}, "--expires: must be in the future", 1),
    ({"user": "ops", "name": "x", "expires": "soon"}, "--expires:", 2),
])
def test_bad_values_name_the_option(options: dict, says: str, code: int):
    get_user_model().objects.create_user("ops")
    with pytest.raises(CommandError, match=says) as raised:
        call_command("create_token", **options, stdout=io.StringIO(), stderr=io.StringIO())
    assert raised.value.returncode == code
    assert not ApiToken.objects.exists()
