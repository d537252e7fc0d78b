"""Input shapes for sign-up and login, shared by pages and the JSON API.

Forms check shape only (required, lengths, email syntax); the rules (password policy, one
email per user) live in accounts.services.
"""

from django import forms

from aegis.errors import ValidationFailed


class RegisterForm(forms.Form):
    name = forms.CharField(max_length=120, strip=True)
    email = forms.EmailField(max_length=254)
    # No max_length here: the password policy (accounts.validators) owns the bounds and its message.
    password = forms.CharField(strip=False, widget=forms.PasswordInput(render_value=False))


class LoginForm(forms.Form):
    email = forms.CharField(max_length=254, strip=True)
    password = forms.CharField(strip=False, max_length=4096, widget=forms.PasswordInput(render_value=False))


def form_data_or_error(form: forms.Form) -> dict:
    """Cleaned data, or ValidationFailed naming the first invalid field (for the JSON API)."""
    if form.is_valid():
        return form.cleaned_data
    field, errors = next(iter(form.errors.items()))
    raise ValidationFailed(f"{field}: {errors[0]}", field=field)
