#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

A command that needs the database first takes the explicit step of ``arbitragex.embedded``: in the
embedded configuration (no ``DATABASE_URL`` / ``REDIS_URL``) it makes the generated secrets and has the
bundled PostgreSQL and Redis up for as long as the command runs, reusing them when the platform is up.
"""

import os
import sys

# Commands that never touch the database or the cache: they run without the embedded servers.
WITHOUT_SERVERS = frozenset(
    {"check", "help", "version", "--help", "-h", "--version", "diffsettings", "collectstatic", "startapp",
     "startproject", "makemessages", "compilemessages"}
)  # fmt: skip


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitragex.settings")
    from django.core.management import execute_from_command_line  # noqa: PLC0415  (after the environment is set)

    from arbitragex import embedded  # noqa: PLC0415  (after the environment is set)

    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    if command in WITHOUT_SERVERS and "--database" not in sys.argv:
        execute_from_command_line(sys.argv)
        return
    try:
        with embedded.servers():
            execute_from_command_line(sys.argv)
    except embedded.EmbeddedError as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
