"""The whitelisted methods of the reference backend and the table that names them.

Handlers are written once per logical endpoint (``chat.send_message``, ``user.get_settings``,
...) and registered under the method name each enabled profile of
`oropendola_ls.backend.endpoints.PROFILES` gives it, so the seed names and the published app's
names reach the same code. Where the published app differs in how it authenticates (the
``X-Access-Token`` methods answer a Guest with an in-band 401, ``agent`` takes an ``api_key``),
the handler is built for that profile's flavour. The published app's browser sign-in
(``auth.initiate_browser``, ``auth.check_browser``, ``auth.refresh_token``) and its
``usage.get_stats`` exist in that profile only; ``vscode_auth.logout`` and ``complete_auth``
(the sign-in page's form target) are served beside it, outside the endpoint map.

The handlers themselves live with their subject: `chat_methods`, `workspace_methods`,
`vscode_auth`; account, user, subscription and usage handlers are here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oropendola_ls.backend.endpoints import HEALTH_METHOD, PROFILES, Endpoint
from oropendola_ls.reference_backend import auth, frappe, vscode_auth
from oropendola_ls.reference_backend.arguments import (
    bool_value,
    current_user,
    maybe_json,
    text_arg,
)
from oropendola_ls.reference_backend.chat_methods import chat_stream, get_history, make_send_message
from oropendola_ls.reference_backend.context import CallContext, Handler
from oropendola_ls.reference_backend.store import User
from oropendola_ls.reference_backend.workspace_methods import (
    files_analyze,
    files_upload,
    workspace_get_memory,
    workspace_index,
    workspace_search,
)

VSCODE_AUTH_LOGOUT = f"{vscode_auth.VSCODE_AUTH}.logout"
COMPLETE_AUTH = vscode_auth.COMPLETE_AUTH

TOGGLE_NAMES = (
    "alwaysAllowReadOnly",
    "alwaysAllowWrite",
    "alwaysAllowExecute",
    "alwaysAllowBrowser",
    "alwaysAllowMcp",
    "alwaysAllowModeSwitch",
    "alwaysAllowSubtasks",
    "alwaysApproveResubmit",
    "alwaysAllowFollowupQuestions",
    "alwaysAllowUpdateTodoList",
)
DEFAULT_SETTINGS: Mapping[str, Any] = {
    "autoApprovalEnabled": False,
    "toggles": dict.fromkeys(TOGGLE_NAMES, False),
}
"""Settings of a user who never saved any (protocol.md §2.8, everything off)."""


@dataclass(frozen=True, slots=True)
class Method:
    """One whitelisted method: its handler and Frappe's ``allow_guest``."""

    name: str
    handler: Handler
    allow_guest: bool = False
    resumes_session: bool = True
    """False for ``login``: Frappe does not load the old session on the login request."""
    logical: str | None = None


# -- shapes --------------------------------------------------------------------------------------


def subscription_status(user: User) -> dict[str, Any]:
    """``vscode_auth.get_subscription_status``'s subscription: a free, unlimited local plan."""
    return {
        "id": f"LOCAL-{user.email}",
        "status": "Active",
        "plan_name": "Local",
        "plan_type": "Free",
        "start_date": user.created[:10],
        "end_date": None,
        "is_active": True,
        "is_trial": False,
        "days_remaining": -1,
        "auto_renew": 0,
        "expired_days_ago": None,
        "quota": {"daily_limit": -1, "daily_remaining": -1, "usage_percent": 0},
    }


def my_subscription(user: User) -> dict[str, Any]:
    """``user_api.get_my_subscription``'s subscription for the local plan."""
    return {
        "id": f"LOCAL-{user.email}",
        "plan_id": "local",
        "plan_title": "Local",
        "status": "Active",
        "start_date": user.created[:10],
        "end_date": None,
        "daily_quota": {"limit": -1, "remaining": -1},
        "monthly_budget": {"limit": -1, "used": 0, "remaining": -1},
    }


def _deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# -- handlers ------------------------------------------------------------------------------------


async def ping(ctx: CallContext) -> object:
    return "pong"


async def login(ctx: CallContext) -> object:
    await auth.login(ctx)
    return None


async def logout(ctx: CallContext) -> object:
    auth.logout(ctx)
    return None


async def get_logged_user(ctx: CallContext) -> object:
    return ctx.user


def _token_user(ctx: CallContext, in_band_auth: bool) -> str | None:
    """The caller of an ``X-Access-Token`` method, or None after setting the in-band 401.

    The published methods read only ``X-Access-Token``: a token that is sent must be a live
    one (a refreshed-away or revoked token is a 401 whatever else the request carries). With
    no token the session or API-key user is accepted too, so cookie clients keep working.
    """
    token = vscode_auth.access_token(ctx) if in_band_auth else None
    if token is not None:
        email = ctx.store.user_for_access_token(token)
        if email is None:
            ctx.http_status = 401
        return email
    if not ctx.is_guest:
        return ctx.user
    if not in_band_auth:  # unreachable: the method is not allow_guest
        raise frappe.PermissionError("Not permitted")
    ctx.http_status = 401
    return None


_UNAUTHORIZED = {"success": False, "error": "Unauthorized"}


def make_get_info(in_band_auth: bool) -> Handler:
    async def get_info(ctx: CallContext) -> object:
        email = _token_user(ctx, in_band_auth)
        if email is None:
            return dict(_UNAUTHORIZED)
        user = current_user(ctx, email)
        usage = ctx.store.usage(user.email)
        return {
            "success": True,
            "profile": {
                "email": user.email,
                "full_name": user.full_name,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "user_image": None,
                "mobile_no": None,
                "phone": None,
                "bio": None,
                "location": None,
                "created": user.created,
                "enabled": int(user.enabled),
            },
            "subscription": subscription_status(user),
            "usage": {
                "total_requests_30_days": usage.total_requests_30_days,
                "total_requests_today": usage.total_requests_today,
                "last_used": usage.last_used,
            },
        }

    return get_info


def make_subscription_check(in_band_auth: bool) -> Handler:
    async def check(ctx: CallContext) -> object:
        email = _token_user(ctx, in_band_auth)
        if email is None:
            return dict(_UNAUTHORIZED)
        return {"success": True, "subscription": subscription_status(current_user(ctx, email))}

    return check


async def subscription_get_info(ctx: CallContext) -> object:
    return {"success": True, "subscription": my_subscription(current_user(ctx))}


async def get_usage_stats(ctx: CallContext) -> object:
    """``vscode_extension.get_usage_stats(api_key)``: the local plan's quota, in-band errors.

    ``api_key`` is an access token or the user's API key, as for ``agent``; without one the
    session user is accepted. ``daily_quota_used`` counts today's prompts (the plan has no
    limit: ``-1``).
    """
    api_key = text_arg(ctx, "api_key")
    if api_key is not None:
        email = vscode_auth.user_for_ai_key(ctx.store, api_key)
        if email is None:
            return {"error": "Invalid API key"}
    elif not ctx.is_guest:
        email = ctx.user
    else:
        return {"error": "API key is required"}
    user = current_user(ctx, email)
    return {
        "daily_quota_limit": -1,
        "daily_quota_remaining": -1,
        "daily_quota_used": ctx.store.usage(user.email).total_requests_today,
        "status": "Active",
        "plan": "local",
    }


def load_settings(ctx: CallContext, email: str) -> dict[str, Any]:
    return _deep_merge(DEFAULT_SETTINGS, ctx.store.get_settings(email) or {})


async def get_settings(ctx: CallContext) -> object:
    return load_settings(ctx, current_user(ctx).email)


def _settings_changes(form: Mapping[str, Any]) -> dict[str, Any]:
    """The settings object a save request carries, validated; 417 for anything else."""
    changes = {k: v for k, v in form.items() if k != "cmd"}
    if isinstance(changes.get("data"), list) and len(changes) == 1:
        raise frappe.ValidationError("Settings must be a JSON object, not a list")
    if "settings" in changes:
        nested = maybe_json(changes.pop("settings"))
        if not isinstance(nested, dict):
            raise frappe.ValidationError(
                "settings must be a JSON object such as "
                '{"autoApprovalEnabled": true, "toggles": {"alwaysAllowReadOnly": true}}'
            )
        changes = {**changes, **nested}
    if "autoApprovalEnabled" in changes:
        changes["autoApprovalEnabled"] = bool_value(
            changes["autoApprovalEnabled"], "autoApprovalEnabled"
        )
    if "toggles" in changes:
        toggles = maybe_json(changes["toggles"])
        if not isinstance(toggles, dict):
            raise frappe.ValidationError(
                'toggles must be a JSON object such as {"alwaysAllowReadOnly": true}'
            )
        changes["toggles"] = {
            str(name): bool_value(value, f"toggles.{name}") for name, value in toggles.items()
        }
    return changes


async def update_settings(ctx: CallContext) -> object:
    email = current_user(ctx).email
    changes = _settings_changes(ctx.form)
    merged = _deep_merge(load_settings(ctx, email), changes)
    ctx.store.save_settings(email, merged)
    return {"success": True, "settings": merged}


def _not_implemented(logical: str) -> Handler:
    async def handler(ctx: CallContext) -> object:
        raise frappe.NotImplementedByBackend(
            f"{logical} is not implemented by the reference backend yet"
        )

    return handler


# -- the table -----------------------------------------------------------------------------------

_Factory = Callable[[str, Endpoint], tuple[Handler, bool]]
"""(profile, endpoint) → (handler, allow_guest)."""


def _session(handler: Handler) -> _Factory:
    return lambda _profile, _endpoint: (handler, False)


def _guest(handler: Handler) -> _Factory:
    return lambda _profile, _endpoint: (handler, True)


def _by_token(make: Callable[[bool], Handler]) -> _Factory:
    """X-Access-Token methods: allow_guest with an in-band 401 in the published app."""

    def factory(_profile: str, endpoint: Endpoint) -> tuple[Handler, bool]:
        in_band = endpoint.auth == "access_token"
        return make(in_band), in_band

    return factory


def _send_message_factory(profile: str, _endpoint: Endpoint) -> tuple[Handler, bool]:
    takes_api_key = profile == "oropendola_ai"
    return make_send_message(takes_api_key), takes_api_key


_FACTORIES: Mapping[str, _Factory] = {
    "auth.login": lambda _p, _e: (login, True),
    "auth.logout": lambda _p, _e: (logout, True),
    "auth.verify_session": _session(get_logged_user),
    "chat.send_message": _send_message_factory,
    "chat.stream": _session(chat_stream),
    "chat.get_history": _session(get_history),
    "user.get_info": _by_token(make_get_info),
    "user.get_settings": _session(get_settings),
    "user.update_settings": _session(update_settings),
    "subscription.check": _by_token(make_subscription_check),
    "subscription.get_info": _session(subscription_get_info),
    "workspace.index": _session(workspace_index),
    "workspace.search": _session(workspace_search),
    "workspace.get_memory": _session(workspace_get_memory),
    "files.upload": _session(files_upload),
    "files.analyze": _session(files_analyze),
    "auth.initiate_browser": _guest(vscode_auth.initiate_auth),
    "auth.check_browser": _guest(vscode_auth.check_auth_status),
    "auth.refresh_token": _guest(vscode_auth.refresh_token),
    "usage.get_stats": _guest(get_usage_stats),
}


def build_methods(profiles: Sequence[str]) -> dict[str, Method]:
    """Method name → `Method` for the enabled profiles, plus ``ping``."""
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        raise ValueError(
            f"unknown profile(s) {', '.join(map(repr, unknown))}; use {', '.join(PROFILES)}"
        )
    methods: dict[str, Method] = {HEALTH_METHOD: Method(HEALTH_METHOD, ping, allow_guest=True)}
    for profile in dict.fromkeys(profiles):
        for logical, endpoint in PROFILES[profile].items():  # type: ignore[index]
            factory = _FACTORIES.get(logical)
            if factory is None:
                handler, allow_guest = _not_implemented(logical), False
            else:
                handler, allow_guest = factory(profile, endpoint)
            existing = methods.get(endpoint.method)
            if existing is not None and existing.logical != logical:
                raise ValueError(
                    f"{endpoint.method} is both {existing.logical} and {logical} in PROFILES"
                )
            methods[endpoint.method] = Method(
                endpoint.method,
                handler,
                allow_guest=allow_guest,
                resumes_session=logical != "auth.login",
                logical=logical,
            )
        if profile == "oropendola_ai":
            methods[VSCODE_AUTH_LOGOUT] = Method(
                VSCODE_AUTH_LOGOUT, vscode_auth.logout, allow_guest=True, logical="auth.logout"
            )
            methods[COMPLETE_AUTH] = Method(COMPLETE_AUTH, vscode_auth.complete_auth,
                                            allow_guest=True, logical=None)
    return methods


def method_not_found(cmd: str) -> frappe.ValidationError:
    """Frappe's answer for a method it cannot import (``handler.execute_cmd``)."""
    # A dotted name is imported (ModuleNotFoundError); a dotless one is looked up in a dict,
    # so the reason is str(KeyError(cmd)).
    reason = f"No module named '{cmd.split('.', 1)[0]}'" if "." in cmd else repr(cmd)
    return frappe.ValidationError(f"Failed to get method for command {cmd} with {reason}")


def not_whitelisted(cmd: str) -> frappe.PermissionError:
    """Frappe v15's answer when a Guest calls a method that is not ``allow_guest``."""
    return frappe.PermissionError(
        "<details><summary>You are not permitted to access this resource.</summary>"
        f"Function <strong>{cmd}</strong> is not whitelisted.</details>",
        title="Method Not Allowed",
    )
