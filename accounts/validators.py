"""Password rules Django does not ship: an upper bound on length."""

from django.core.exceptions import ValidationError


class MaximumLengthValidator:
    """Refuse passwords longer than `max_length` characters.

    Long passphrases are welcome (BCryptSHA256 hashes a SHA-256 digest, so nothing past bcrypt's
    72 bytes is lost), but an unbounded input is a cheap way to make the server hash megabytes.
    """

    def __init__(self, max_length: int = 1024):
        self.max_length = max_length

    def validate(self, password: str, user=None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                f"This password is too long. It must contain at most {self.max_length} characters.",
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return f"Your password must contain at most {self.max_length} characters."
