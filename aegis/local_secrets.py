"""Secrets generated once per install and kept under var/, for settings the environment leaves unset.

The repository holds no key: a key written in it signs tokens for anyone who reads it. The
first process that needs one (a gunicorn worker, a manage.py command, a test) writes every
key to a private temporary file and links it into place; link fails if another process won
the race, and then everyone reads the winner's file, so all processes agree on one value.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# Name -> bytes of randomness (token_urlsafe gives ~1.3 characters per byte).
KEYS = {"DJANGO_SECRET_KEY": 50, "JWT_SECRET": 48}


def load_or_create(path: Path) -> dict[str, str]:
    """The keys in `path` (JSON, mode 600), creating the file with fresh random keys if absent."""
    if not path.exists():
        try:
            _create(path)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"cannot write {path} ({exc}): set DJANGO_SECRET_KEY and JWT_SECRET, "
                "or AEGIS_VAR_DIR to a writable folder."
            ) from None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(f"{path} is unreadable ({exc}); delete it to generate new keys.") from None
    missing = [name for name in KEYS if not isinstance(stored.get(name), str) or not stored[name]]
    if missing:
        raise ImproperlyConfigured(f"{path} lacks {', '.join(missing)}; delete it to generate new keys.")
    return stored


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = {name: secrets.token_urlsafe(size) for name, size in KEYS.items()}
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(fresh, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        # A complete file appears under its name at once, or not at all if another process was first.
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
