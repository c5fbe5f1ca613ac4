"""``manage.py create_token --user NAME --name TOKEN_NAME [--expires TIME]``: an API token for scripted setups
(the Hubble exporter's Secret, a CI job), made as the page and the API make one. Only the token goes to stdout,
so that ``kubectl create secret ... --from-literal=token=$(manage.py create_token ...)`` works.

Exit codes: 0 made, 1 unknown user or bad value (the message names the option), 2 usage.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.access import SYSTEM
from flows.timespan import time_option
from policies import services


class Command(BaseCommand):
    help = "Make an API token for a user and print it (it is shown only this once; only its hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="the user the token acts as, with that user's roles")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. hubble-exporter")
        parser.add_argument("--expires", metavar="TIME", help="when it stops working (ISO 8601; default never)")

    def handle(self, *args: Any, user: str, name: str, expires: str | None, **options: Any) -> None:
        expires_at = time_option(expires, "--expires")
        try:
            made = services.create_token(SYSTEM, name, expires_at=expires_at, username=user)
        except ValueError as exc:
            message = str(exc).replace("user:", "--user:", 1).replace("name:", "--name:", 1)
            raise CommandError(message.replace("expires_at:", "--expires:", 1), returncode=1) from None
        self.stdout.write(made.secret)
        self.stderr.write(f"made token {made.token.name!r} ({made.token.prefix}…) for {user}; it is not shown again")
