"""Token authentication: ``Authorization: Bearer <token>`` with a token from ``services.create_token``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from policies import services


class TokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization: give the token after the word Bearer")
        found = services.authenticate_token(header[1])
        if found is None:
            raise exceptions.AuthenticationFailed("the token is unknown, revoked or expired")
        user, token = found
        user.netsec_via = "api"
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="netsec"'


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "policies.api.auth.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "an API token made on /tokens/ or by the API"}
