#!/usr/bin/env python
"""Django's command-line utility for Aegis.

A database that cannot be reached, or a setting that is refused, is reported as one clear line,
not a traceback.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from pymongo.errors import ConnectionFailure

    try:
        execute_from_command_line(sys.argv)
    except ConnectionFailure as exc:
        from aegis.mongo import unreachable_message

        print(unreachable_message(exc), file=sys.stderr)
        sys.exit(2)
    except ImproperlyConfigured as exc:
        print(f"aegis: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
