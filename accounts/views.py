"""Browser pages for identity and the dashboard (Django session cookie; CSRF on every form)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import auth, messages
from django.http import HttpRequest
from django.shortcuts import redirect, render, resolve_url
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.auth import InvalidCredentials, login_attempt
from accounts.forms import LoginForm, PasswordChangeForm, RegisterForm
from accounts.selectors import account_for_user
from accounts.services import AccountExists, WrongPassword, account_create, user_password_change, user_register
from adminpanel.charts import line_chart
from aegis.errors import Conflict, ValidationFailed
from aegis.policy import PUBLIC, USER, policy
from aegis.ratelimits import limit_hit
from aegis.security import session_mark_signed_in
from ledger.selectors import balance_series, entries_for_account


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _sign_in(request: HttpRequest, user) -> None:
    # auth.login rotates the session id (no fixation) and the CSRF token.
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    session_mark_signed_in(request.session)  # the idle and absolute clocks start now


@policy(PUBLIC, methods=["GET", "POST"], strict="auth")
def login_page(request: HttpRequest):
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = login_attempt(request, email=form.cleaned_data["email"], password=form.cleaned_data["password"])
        except InvalidCredentials as err:
            form.add_error(None, err.message)
        else:
            _sign_in(request, user)
            return redirect(_next_url(request))
    return render(request, "accounts/login_form.html", {"form": form, "next": request.GET.get("next", "")})


@policy(PUBLIC, methods=["GET", "POST"], strict="auth")
def register_page(request: HttpRequest):
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = user_register(email=data["email"], password=data["password"], name=data["name"])
        except ValidationFailed as err:
            form.add_error(err.field if err.field in form.fields else None, err.message)
        except Conflict as err:
            form.add_error("email", err.message)
        else:
            _sign_in(request, user)
            return redirect("accounts:dashboard")
    return render(request, "accounts/register_form.html", {"form": form})


@policy(USER, methods=["POST"])
def logout_page(request: HttpRequest):
    auth.logout(request)  # deletes the session server-side and clears the cookie
    return redirect("landing")


@policy(USER, methods=["GET", "POST"], strict="auth")
def password_change(request: HttpRequest):
    """Change the password; every other session and every API token of the user ends with it."""
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        # Wrong current passwords count against the per-account login limit, like logins do.
        rate, email = settings.AEGIS_RATELIMIT_LOGIN, request.user.email
        limit_hit(group="login-account", rate=rate, key=email, increment=False)
        try:
            user = user_password_change(
                user=request.user, current_password=data["current_password"], new_password=data["new_password"]
            )
        except WrongPassword as err:
            limit_hit(group="login-account", rate=rate, key=email, increment=True)
            form.add_error("current_password", err.message)
        except ValidationFailed as err:
            form.add_error(err.field if err.field in form.fields else None, err.message)
        else:
            auth.update_session_auth_hash(request, user)  # this session stays; the others end
            session_mark_signed_in(request.session)
            messages.success(request, "Password changed. Your other sessions and API tokens were signed out.")
            return redirect("accounts:dashboard")
    return render(request, "accounts/password_change_form.html", {"form": form})


@policy(USER, methods=["GET"])
def dashboard(request: HttpRequest):
    """The virtual card (polled by HTMX for a live balance), a balance chart and recent activity."""
    account = account_for_user(user=request.user)
    context: dict = {"account": account}
    if request.htmx:  # the card's periodic refresh
        response = render(request, "accounts/dashboard.html#account-card", context)
    else:
        if account is not None:
            series = balance_series(account_id=account.pk, points=60)
            context["chart"] = line_chart([0] + [balance for _, balance in series])
            context["recent"] = entries_for_account(account_id=account.pk, page=1, limit=6)["rows"]
        response = render(request, "accounts/dashboard.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@policy(USER, methods=["POST"])
def account_create_page(request: HttpRequest):
    try:
        account_create(user=request.user)
    except AccountExists as err:
        messages.info(request, err.message)
    else:
        messages.success(request, "Your account is open.")
    return redirect("accounts:dashboard")
