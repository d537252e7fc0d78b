"""Browser pages for identity and the dashboard (Django session cookie; CSRF on every form)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.auth import (
    InvalidCredentials,
    login_attempt,
    login_failure_record,
    login_failures_check,
    reauth_stamp_login,
)
from accounts.forms import LoginForm, PasswordChangeForm, RegisterForm, SecondFactorCodeForm
from accounts.policy import PUBLIC, USER, policy
from accounts.selectors import account_for_user
from accounts.services import AccountExists, WrongPassword, account_create, user_password_change, user_register
from accounts.session_end import SESSION_ENDED, session_end_notice, session_end_record, session_touch
from accounts.two_factor import (
    AlreadyEnrolled,
    InvalidCode,
    device_for_user,
    enrolment_secret,
    provisioning_uri,
    qr_code_svg,
    recovery_codes_left,
    second_factor_verify,
    secret_for_typing,
    session_after_password,
    session_mark_verified,
    session_needs_code,
    two_factor_enrol,
)
from aegis.charts import line_chart
from aegis.errors import Conflict, RateLimited, ValidationFailed
from aegis.pages import render_page
from aegis.security import session_mark_signed_in
from ledger.selectors import balance_series, recent_entries


def _next_url(request: HttpRequest, user) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    # A path on this site only: `redirect()` reads a bare word ("foo") as a view name to reverse.
    host, https = {request.get_host()}, request.is_secure()
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts=host, require_https=https)
    if safe and target.startswith("/"):
        return target
    return resolve_url("adminpanel:index" if user.is_admin else settings.LOGIN_REDIRECT_URL)


def _sign_in(request: HttpRequest, user) -> None:
    # auth.login rotates the session id (no fixation) and the CSRF token.
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    session_mark_signed_in(request.session)  # the idle and absolute clocks start now
    reauth_stamp_login(request)  # the password was typed just now: sudo mode for a few minutes
    request.session.pop(SESSION_ENDED, None)  # why the last session ended is old news now


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
            if session_after_password(request, user=user):
                return redirect(_code_page_url(request))
            return redirect(_next_url(request, user))
    # Why the last session of this browser ended, once (accounts.session_end); only on arrival.
    ended = session_end_notice(request.session) if request.method == "GET" else None
    context = {"form": form, "next": request.GET.get("next", ""), "session_ended": ended}
    return render(request, "accounts/login_form.html", context)


def _code_page_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    page = resolve_url("accounts:two-factor-verify")
    return f"{page}?{urlencode({'next': target})}" if target else page


@policy(USER, methods=["GET", "POST"], strict="auth")
def two_factor_verify_page(request: HttpRequest):
    """The second step of signing in: a code from the app, or a recovery code."""
    user = request.user
    if not session_needs_code(request):
        return redirect(_next_url(request, user))
    if device_for_user(user=user) is None:
        return redirect("accounts:two-factor-enrol")  # staff not enrolled yet: enrol before any staff page
    form = SecondFactorCodeForm(request.POST or None)
    status = 400
    if request.method == "POST" and form.is_valid():
        try:
            kind = second_factor_verify(request, user=user, code=form.cleaned_data["code"])
        except InvalidCode as err:
            form.add_error("code", err.message)
        except RateLimited as err:
            form.add_error("code", err.message)
            status = 429
        else:
            session_mark_verified(request)
            if kind == "recovery":
                left = recovery_codes_left(user=user)
                messages.warning(request, f"You signed in with a recovery code; {left} left. Each works once.")
            return redirect(_next_url(request, user))
    context = {"form": form, "next": request.POST.get("next") or request.GET.get("next", "")}
    return render(request, "accounts/two_factor_verify_form.html", context, status=status if form.errors else 200)


@policy(USER, methods=["GET", "POST"], strict="auth")
def two_factor_enrol_page(request: HttpRequest):
    """Set up the authenticator: scan the QR code (or type the secret), confirm with a first code.

    The recovery codes are shown on the answer to that confirmation, once, and never again.
    """
    user = request.user
    status = 400
    if device_for_user(user=user) is not None:
        messages.info(request, AlreadyEnrolled.message)
        return redirect("accounts:two-factor")
    form = SecondFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = two_factor_enrol(request, user=user, code=form.cleaned_data["code"])
        except (InvalidCode, AlreadyEnrolled) as err:
            form.add_error("code", err.message)
        except RateLimited as err:
            form.add_error("code", err.message)
            status = 429
        else:
            response = render(request, "accounts/recovery_code_list.html", {"codes": codes})
            response["Cache-Control"] = "no-store"  # shown once: never from a cache or the back button
            return response
    secret = enrolment_secret(request)
    context = {
        "form": form,
        "qr_svg": qr_code_svg(uri=provisioning_uri(user=user, secret=secret)),
        "secret": secret_for_typing(secret),
        "required": user.is_admin,
    }
    response = render(request, "accounts/two_factor_enrol_form.html", context, status=status if form.errors else 200)
    response["Cache-Control"] = "no-store"  # it holds the secret
    return response


@policy(USER, methods=["GET"])
def two_factor_settings_page(request: HttpRequest):
    """Security settings: whether two-factor sign-in is on, and (for customers) the way to turn it on."""
    device = device_for_user(user=request.user)
    context = {
        "device": device,
        "codes_left": recovery_codes_left(user=request.user) if device else 0,
    }
    return render(request, "accounts/two_factor_detail.html", context)


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
    auth.logout(request)  # deletes the session server-side; the new one only says why it ended
    session_end_record(request.session, "logout")  # other tabs' polls land on "You signed out."
    return redirect("landing")


@policy(USER, methods=["POST"])
def session_keepalive(request: HttpRequest):
    """The warning's "Stay signed in" (static/js/aegis.js): activity, so the idle clock restarts."""
    session_touch(request.session)
    return HttpResponse(status=204)


@policy(USER, methods=["GET", "POST"], strict="auth")
def password_change(request: HttpRequest):
    """Change the password; every other session and every API token of the user ends with it."""
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        # Wrong current passwords count against the failed-login limits, like logins do.
        email = request.user.email
        login_failures_check(request, email=email)
        try:
            user = user_password_change(
                user=request.user, current_password=data["current_password"], new_password=data["new_password"]
            )
        except WrongPassword as err:
            login_failure_record(request, email=email)
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
    """The virtual card, a balance chart and recent activity.

    HTMX polls the `dashboard-live` partial, which holds all three, so they are read together and
    never contradict each other (a card ahead of its chart). Both ledger reads are seq ranges
    below the account's ledger_seq: a page of reads at any history size.
    """
    account = account_for_user(user=request.user)
    context: dict = {"account": account}
    if account is not None:
        series = balance_series(account=account, points=60)
        context["chart"] = line_chart([0] + [balance for _, balance in series])
        context["recent"] = recent_entries(account=account, limit=6)
    partial = "dashboard-live" if account is not None else "open-account"
    return render_page(request, "accounts/dashboard.html", partial, context)


@policy(USER, methods=["POST"])
def account_create_page(request: HttpRequest):
    try:
        account_create(user=request.user)
    except AccountExists as err:
        messages.info(request, err.message)
    else:
        messages.success(request, "Your account is open.")
    return redirect("accounts:dashboard")
