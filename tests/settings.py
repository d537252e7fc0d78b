"""The test suite's settings: production's, with a fast password hasher.

bcrypt costs about 0.6 s a hash on this machine and the fixtures create users all the time, so
everywhere else it would dominate the suite. pytest uses this module (pyproject.toml) and so does
every process the tests start (they inherit DJANGO_SETTINGS_MODULE; `subprocess_env` sets it).
The tests of password hashing itself ask for the `production_hashers` fixture (tests/conftest.py).
"""

from aegis.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# tests/management/commands/flush.py: the flush pytest-django runs after every test, without
# rewriting the content types and permissions each time.
INSTALLED_APPS = [*INSTALLED_APPS, "tests"]  # noqa: F405
