"""The whitelisted methods of the reference backend and the table that names them.

Handlers are written once per logical endpoint (``chat.send_message``, ``user.get_settings``,
...) and registered under the method name each enabled profile of
`oropendola_ls.backend.endpoints.PROFILES` gives it, so the seed names and the published app's
names reach the same code. Where the published app differs in how it authenticates (the
``X-Access-Token`` methods answer a Guest with an in-band 401, ``agent`` takes an ``api_key``),
the handler is built for that profile's flavour.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oropendola_ls.backend.endpoints import HEALTH_METHOD, PROFILES, Endpoint
from oropendola_ls.reference_backend import auth, frappe, security
from oropendola_ls.reference_backend.context import CallContext, Handler
from oropendola_ls.reference_backend.store import User

VSCODE_AUTH_LOGOUT = "oropendola_ai.oropendola_ai.api.vscode_auth.logout"
ECHO_MODEL = "reference-echo"
DEFAULT_HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 1000

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


# -- argument helpers ----------------------------------------------------------------------------


def _text(ctx: CallContext, *names: str) -> str | None:
    """The first non-empty argument among ``names``, as text."""
    for name in names:
        value = ctx.form.get(name)
        if value is None or value == "":
            continue
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return None


def _int(ctx: CallContext, name: str, default: int, low: int, high: int) -> int:
    value = ctx.form.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise frappe.ValidationError(f"{name} must be an integer, not {value!r}") from None
    if not low <= number <= high:
        raise frappe.ValidationError(f"{name} must be between {low} and {high}, not {number}")
    return number


def _maybe_json(value: object) -> object:
    """Form and query values are strings: decode one that holds a JSON object or list."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _bool(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise frappe.ValidationError(f"{what} must be true or false, not {value!r}")


def _user(ctx: CallContext, email: str | None = None) -> User:
    user = ctx.store.get_user(email or ctx.user)
    if user is None:  # the account went away mid-request
        raise frappe.AuthenticationError()
    return user


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


def echo_reply(prompt: str) -> str:
    """The reference backend's deterministic answer to a prompt."""
    return (
        "This is the offline Oropendola reference backend: no AI model is connected, "
        f'so it can only echo your prompt. You said: "{prompt}"'
    )


# -- handlers ------------------------------------------------------------------------------------


async def ping(ctx: CallContext) -> object:
    return "pong"


async def login(ctx: CallContext) -> object:
    await auth.login(ctx)
    return None


async def logout(ctx: CallContext) -> object:
    auth.logout(ctx)
    return None


async def vscode_logout(ctx: CallContext) -> object:
    # The real method revokes the X-Access-Token's tokens; access tokens arrive in a later
    # issue, so there is nothing to revoke yet. Like the real one it answers a Guest too.
    return {"success": True, "message": "Successfully logged out"}


async def get_logged_user(ctx: CallContext) -> object:
    return ctx.user


def _token_user(ctx: CallContext, in_band_auth: bool) -> str | None:
    """The caller of an ``X-Access-Token`` method, or None after setting the in-band 401.

    The real methods read only ``X-Access-Token``; until access tokens exist here the session
    or API-key user is accepted instead.
    """
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
        user = _user(ctx, email)
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
        return {"success": True, "subscription": subscription_status(_user(ctx, email))}

    return check


async def subscription_get_info(ctx: CallContext) -> object:
    return {"success": True, "subscription": my_subscription(_user(ctx))}


def load_settings(ctx: CallContext, email: str) -> dict[str, Any]:
    return _deep_merge(DEFAULT_SETTINGS, ctx.store.get_settings(email) or {})


async def get_settings(ctx: CallContext) -> object:
    return load_settings(ctx, _user(ctx).email)


def _settings_changes(form: Mapping[str, Any]) -> dict[str, Any]:
    """The settings object a save request carries, validated; 417 for anything else."""
    changes = {k: v for k, v in form.items() if k != "cmd"}
    if isinstance(changes.get("data"), list) and len(changes) == 1:
        raise frappe.ValidationError("Settings must be a JSON object, not a list")
    if "settings" in changes:
        nested = _maybe_json(changes.pop("settings"))
        if not isinstance(nested, dict):
            raise frappe.ValidationError(
                "settings must be a JSON object such as "
                '{"autoApprovalEnabled": true, "toggles": {"alwaysAllowReadOnly": true}}'
            )
        changes = {**changes, **nested}
    if "autoApprovalEnabled" in changes:
        changes["autoApprovalEnabled"] = _bool(
            changes["autoApprovalEnabled"], "autoApprovalEnabled"
        )
    if "toggles" in changes:
        toggles = _maybe_json(changes["toggles"])
        if not isinstance(toggles, dict):
            raise frappe.ValidationError(
                'toggles must be a JSON object such as {"alwaysAllowReadOnly": true}'
            )
        changes["toggles"] = {
            str(name): _bool(value, f"toggles.{name}") for name, value in toggles.items()
        }
    return changes


async def update_settings(ctx: CallContext) -> object:
    email = _user(ctx).email
    changes = _settings_changes(ctx.form)
    merged = _deep_merge(load_settings(ctx, email), changes)
    ctx.store.save_settings(email, merged)
    return {"success": True, "settings": merged}


def make_send_message(takes_api_key: bool) -> Handler:
    async def send_message(ctx: CallContext) -> object:
        email: str | None = None if ctx.is_guest else ctx.user
        if takes_api_key:
            # The real `agent` requires `api_key` (a VS Code access token or AI API key) and
            # ignores the Frappe session. Here an `api_key` is checked against the users' API
            # keys, and the session user is accepted as well, so cookie-only clients can chat.
            api_key = _text(ctx, "api_key")
            if api_key is not None:
                email = ctx.store.user_for_api_key(api_key)
                if email is None:
                    return {"status": 401, "error": "Invalid API key"}
            elif email is None:
                return {"status": 400, "error": "API key is required"}
        assert email is not None  # a Guest cannot reach the session-only flavour
        prompt = _text(ctx, "prompt", "message")
        if prompt is None or not prompt.strip():
            return {"status": 400, "error": "Prompt is required"}
        conversation_id = _text(ctx, "conversation_id") or security.new_conversation_id()
        if len(conversation_id) > 200:
            return {"status": 400, "error": "conversation_id is too long"}
        reply = echo_reply(prompt)
        ctx.store.add_chat_message(conversation_id, email, "user", prompt)
        ctx.store.add_chat_message(conversation_id, email, "assistant", reply)
        return {
            "status": 200,
            "content": reply,
            "model": ECHO_MODEL,
            "conversation_id": conversation_id,
            "agent_mode": True,
        }

    return send_message


async def get_history(ctx: CallContext) -> object:
    email = _user(ctx).email
    limit = _int(ctx, "limit", DEFAULT_HISTORY_LIMIT, 1, MAX_HISTORY_LIMIT)
    conversation_id = _text(ctx, "conversation_id") or ctx.store.latest_conversation(email)
    messages = ctx.store.get_chat_history(email, conversation_id, limit) if conversation_id else []
    return {
        "conversation_id": conversation_id,
        "messages": [
            {"role": m.role, "content": m.content, "timestamp": m.timestamp} for m in messages
        ],
    }


async def chat_stream(ctx: CallContext) -> object:
    raise frappe.NotImplementedByBackend(
        "chat.stream is not implemented by the reference backend yet"
    )


async def workspace_index(ctx: CallContext) -> object:
    files = _maybe_json(ctx.form.get("files"))
    if files is None or files == "":
        files = []
    if not isinstance(files, list):
        raise frappe.ValidationError("files must be a list of {path, language, symbols} objects")
    # Nothing is indexed yet (a later issue builds the index); the count is what was received.
    return {"success": True, "indexed": len(files)}


async def workspace_search(ctx: CallContext) -> object:
    return {"success": True, "data": {"results": []}}


async def workspace_get_memory(ctx: CallContext) -> object:
    return {"success": True, "memories": []}


async def files_upload(ctx: CallContext) -> object:
    upload = ctx.files.get("file") or next(iter(ctx.files.values()), None)
    if upload is None:
        raise frappe.ValidationError("No file attached: send multipart form data with a 'file'")
    return {
        "success": True,
        "data": {
            "document_id": "doc-" + hashlib.sha256(upload.data).hexdigest()[:16],
            "filename": upload.filename,
            "size": len(upload.data),
            "status": "received",
        },
    }


async def files_analyze(ctx: CallContext) -> object:
    content = _text(ctx, "content")
    if content is None:
        raise frappe.ValidationError("content is required")
    analysis_type = _text(ctx, "analysis_type") or "summary"
    lines = content.count("\n") + (0 if content.endswith("\n") else 1)
    return {
        "success": True,
        "data": {
            "status": "completed",
            "analysis_type": analysis_type,
            "result": {
                "characters": len(content),
                "lines": lines,
                "summary": f"{len(content)} characters in {lines} lines "
                "(the reference backend only counts; it has no model to analyse with)",
            },
        },
    }


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
                VSCODE_AUTH_LOGOUT, vscode_logout, allow_guest=True, logical="auth.logout"
            )
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
