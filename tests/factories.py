"""Small factories for tests: real rows in the real embedded server."""

import itertools

from accounts.models import Account, Role, User

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple 42"


def make_user(*, email: str | None = None, role: str = Role.USER, password: str = PASSWORD, **extra) -> User:
    email = email or f"user{next(_seq)}@example.com"
    return User.objects.create_user(email, password, role=role, **extra)


def make_account(*, user: User | None = None, **extra) -> Account:
    return Account.objects.create(user=user or make_user(), **extra)
