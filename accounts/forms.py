"""Input shapes for sign-up and login, shared by pages and the JSON API.

Forms check shape only (required, lengths, email syntax); the rules (password policy, one
email per user) live in accounts.services.
"""

from django import forms

from aegis.errors import ValidationFailed


# `autocomplete` tokens let browsers and password managers fill the right value (WCAG 1.3.5):
# a new account's password is "new-password", so a manager offers to generate and save one.
class RegisterForm(forms.Form):
    name = forms.CharField(max_length=120, strip=True, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    # No max_length here: the password policy (accounts.validators) owns the bounds and its message.
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    )


class LoginForm(forms.Form):
    # A text input (not type=email): staff and customers alike sign in with whatever they typed at
    # sign-up, and the server, not the browser, says what is wrong with it.
    email = forms.CharField(
        max_length=254, strip=True, widget=forms.TextInput(attrs={"autocomplete": "email", "inputmode": "email"})
    )
    password = forms.CharField(
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "current-password"}),
    )


class LoginWithCodeForm(LoginForm):
    """The API's login: a second-factor code (or a recovery code) for those who need one."""

    otp = forms.CharField(max_length=32, strip=True, required=False)


class SecondFactorCodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,  # 6 digits, or a recovery code with its dash
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True, "spellcheck": "false"}
        ),
    )


class PasswordChangeForm(forms.Form):
    current_password = forms.CharField(
        strip=False, max_length=4096, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    # The password policy (accounts.validators via validate_password) owns the bounds.
    new_password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    new_password_confirm = forms.CharField(
        label="Repeat the new password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("new_password") and data.get("new_password") != data.get("new_password_confirm"):
            self.add_error("new_password_confirm", "The two new passwords differ.")
        return data


def form_data_or_error(form: forms.Form) -> dict:
    """Cleaned data, or ValidationFailed naming the first invalid field (for the JSON API)."""
    if form.is_valid():
        return form.cleaned_data
    field, errors = next(iter(form.errors.items()))
    raise ValidationFailed(f"{field}: {errors[0]}", field=field)
