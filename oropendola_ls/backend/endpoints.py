"""Where the backend is and what its methods are called.

`BackendConfig` is the one place that knows the base URL (normalised and checked), the
environment it implies, the endpoint map (a logical name such as ``chat.send_message`` mapped
to a Frappe method path, a verb and an auth kind) and the fallback URLs to fail over to.

The endpoint map is data: two built-in profiles, ``oropendola`` (the seed's names) and
``oropendola_ai`` (the published Frappe app, see protocol.md §2 and §7), plus per-entry
overrides from the ``endpoints`` setting.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import attrs

DEFAULT_SERVER_URL = "https://oropendola.ai/"

Verb = Literal["GET", "POST"]
AuthKind = Literal["none", "session", "access_token"]
Environment = Literal["production", "development", "custom"]
ProfileName = Literal["oropendola", "oropendola_ai"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("oropendola", "oropendola_ai")

HEALTH_METHOD = "ping"


class BackendConfigError(ValueError):
    """A base URL, profile or endpoint override that cannot be used, with the reason."""


@attrs.frozen
class Endpoint:
    """One backend method: its dotted Frappe path, HTTP verb and the credential it needs."""

    method: str
    verb: Verb = "POST"
    auth: AuthKind = "session"

    @property
    def path(self) -> str:
        return f"api/method/{self.method}"


_AI = "oropendola_ai.oropendola_ai.api"

PROFILES: Mapping[ProfileName, Mapping[str, Endpoint]] = {
    "oropendola": {
        "auth.login": Endpoint("oropendola.auth.login", "POST", "none"),
        "auth.logout": Endpoint("oropendola.auth.logout", "POST"),
        "auth.verify_session": Endpoint("oropendola.auth.verify_session", "GET"),
        "chat.send_message": Endpoint("oropendola.chat.send_message", "POST"),
        "chat.stream": Endpoint("oropendola.chat.stream", "GET"),
        "chat.get_history": Endpoint("oropendola.chat.get_history", "GET"),
        "user.get_info": Endpoint("oropendola.user.get_info", "GET"),
        "user.get_settings": Endpoint("oropendola.user.get_settings", "GET"),
        "user.update_settings": Endpoint("oropendola.user.update_settings", "POST"),
        "subscription.check": Endpoint("oropendola.subscription.check", "GET"),
        "subscription.get_info": Endpoint("oropendola.subscription.get_info", "GET"),
        "workspace.index": Endpoint("oropendola.workspace.index", "POST"),
        "workspace.search": Endpoint("oropendola.workspace.search", "POST"),
        "workspace.get_memory": Endpoint("oropendola.workspace.get_memory", "GET"),
        "files.upload": Endpoint("oropendola.files.upload", "POST"),
        "files.analyze": Endpoint("oropendola.files.analyze", "POST"),
    },
    "oropendola_ai": {
        "auth.login": Endpoint("login", "POST", "none"),
        "auth.logout": Endpoint("logout", "POST"),
        "auth.verify_session": Endpoint("frappe.auth.get_logged_user", "GET"),
        "chat.send_message": Endpoint(f"{_AI}.vscode_extension.agent", "POST"),
        "chat.get_history": Endpoint("ai_assistant.api.chat.get_conversation_history", "GET"),
        "user.get_info": Endpoint(f"{_AI}.vscode_auth.get_my_profile", "GET", "access_token"),
        "user.get_settings": Endpoint(
            "ai_assistant.api.oropendola.get_auto_approve_settings", "GET"
        ),
        "user.update_settings": Endpoint(
            "ai_assistant.api.oropendola.save_auto_approve_settings", "POST"
        ),
        "subscription.check": Endpoint(
            f"{_AI}.vscode_auth.get_subscription_status", "GET", "access_token"
        ),
        "subscription.get_info": Endpoint(f"{_AI}.user_api.get_my_subscription", "POST"),
        "workspace.index": Endpoint("ai_assistant.api.endpoints.index_codebase", "POST"),
        "workspace.search": Endpoint("ai_assistant.api.vector_search", "POST"),
        "workspace.get_memory": Endpoint("ai_assistant.api.vector_retrieve_memories", "POST"),
        "files.upload": Endpoint("oropendola.documents.upload", "POST"),
        "files.analyze": Endpoint("oropendola.documents.analyze", "POST"),
        "auth.initiate_browser": Endpoint(f"{_AI}.vscode_auth.initiate_auth", "GET", "none"),
        "auth.check_browser": Endpoint(f"{_AI}.vscode_auth.check_auth_status", "GET", "none"),
        "auth.refresh_token": Endpoint(f"{_AI}.vscode_auth.refresh_token", "POST", "none"),
        "auth.logout_token": Endpoint(f"{_AI}.vscode_auth.logout", "POST", "access_token"),
        "usage.get_stats": Endpoint(f"{_AI}.vscode_extension.get_usage_stats", "GET"),
    },
}
"""Logical name → endpoint, per profile. ``chat.stream`` has no published-app equivalent; the
browser sign-in (``auth.initiate_browser``, ``auth.check_browser``, ``auth.refresh_token``,
``auth.logout_token`` which revokes the tokens, protocol.md §5.1, §2.2) and ``usage.get_stats``
have no seed equivalent. ``chat.send_message`` and
``usage.get_stats`` of the published app read the access token from the ``api_key`` argument,
not from a header."""

LOGICAL_NAMES: frozenset[str] = frozenset(name for p in PROFILES.values() for name in p)


def other_profile(profile: ProfileName) -> ProfileName:
    return "oropendola_ai" if profile == "oropendola" else "oropendola"


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_base_url(url: str) -> str:
    """Return ``url`` as ``scheme://host[:port]/path/`` or raise `BackendConfigError`.

    Only ``https://`` is accepted, except ``http://`` on a loopback host: TLS is never
    optional for a backend that receives session cookies.
    """
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendConfigError(
            f"{url!r} is not a backend URL: expected https://host[:port][/path]"
        )
    if parts.username or parts.password:
        raise BackendConfigError(
            "the backend URL must not carry credentials: sign in with `oropendola-ls login`"
        )
    if parts.query or parts.fragment:
        raise BackendConfigError(f"{url!r} must not have a query or fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise BackendConfigError(f"{url!r} has an invalid port") from exc
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise BackendConfigError(
            f"plain http:// is only allowed for loopback hosts; use https:// for {parts.hostname}"
        )
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme, parts.netloc.lower(), path, "", ""))


def environment_of(base_url: str) -> Environment:
    if base_url == DEFAULT_SERVER_URL:
        return "production"
    host = urlsplit(base_url).hostname or ""
    return "development" if is_loopback_host(host) else "custom"


def site_name(base_url: str) -> str:
    """The Frappe site name a base URL implies (its host name), used for the realtime namespace."""
    return urlsplit(base_url).hostname or ""


def parse_endpoint_override(name: str, value: object) -> Endpoint:
    """Read one entry of the ``endpoints`` setting: a method path, or ``{method, verb?, auth?}``."""
    if name not in LOGICAL_NAMES:
        known = ", ".join(sorted(LOGICAL_NAMES))
        raise BackendConfigError(f"unknown endpoint {name!r}; known endpoints: {known}")
    if isinstance(value, str) and value.strip():
        return Endpoint(value.strip(), _default_verb(name), _default_auth(name))
    if isinstance(value, Mapping):
        method = value.get("method")
        verb = str(value.get("verb", _default_verb(name))).upper()
        auth = value.get("auth", _default_auth(name))
        if not isinstance(method, str) or not method.strip():
            raise BackendConfigError(f"endpoint {name!r} needs a non-empty 'method'")
        if verb not in ("GET", "POST"):
            raise BackendConfigError(f"endpoint {name!r}: verb must be GET or POST, not {verb!r}")
        if auth not in ("none", "session", "access_token"):
            raise BackendConfigError(
                f"endpoint {name!r}: auth must be none, session or access_token, not {auth!r}"
            )
        return Endpoint(method.strip(), verb, auth)  # type: ignore[arg-type]
    raise BackendConfigError(
        f"endpoint {name!r} must be a method path or an object {{method, verb, auth}}"
    )


def _default_verb(name: str) -> Verb:
    return PROFILES["oropendola"].get(name, Endpoint("", "POST")).verb


def _default_auth(name: str) -> AuthKind:
    return PROFILES["oropendola"].get(name, Endpoint("", "POST", "session")).auth


@attrs.define
class BackendConfig:
    """The validated backend location and endpoint map, with failover across fallback URLs.

    ``active_url`` is the URL requests go to: the primary unless it failed its health check and
    a fallback answered. `mark_primary_recovered` moves back.
    """

    primary_url: str
    fallback_urls: tuple[str, ...] = ()
    profile: ProfileName = "oropendola"
    overrides: Mapping[str, Endpoint] = attrs.field(factory=dict)
    active_url: str = ""
    _learned: dict[str, Endpoint] = attrs.field(factory=dict, alias="_learned")

    def __attrs_post_init__(self) -> None:
        if not self.active_url:
            self.active_url = self.primary_url

    @classmethod
    def create(
        cls,
        server_url: str = DEFAULT_SERVER_URL,
        fallback_urls: Sequence[str] = (),
        profile: str = "oropendola",
        endpoints: Mapping[str, object] | None = None,
    ) -> BackendConfig:
        """Validate everything at once; raise `BackendConfigError` naming what is wrong."""
        if profile not in PROFILE_NAMES:
            raise BackendConfigError(
                f"unknown profile {profile!r}; use one of: {', '.join(PROFILE_NAMES)}"
            )
        primary = normalize_base_url(server_url)
        fallbacks = tuple(
            url for url in dict.fromkeys(normalize_base_url(u) for u in fallback_urls)
            if url != primary
        )
        overrides = {
            name: parse_endpoint_override(name, v) for name, v in (endpoints or {}).items()
        }
        return cls(primary, fallbacks, profile, overrides)

    @property
    def environment(self) -> Environment:
        return environment_of(self.active_url)

    @property
    def candidate_urls(self) -> tuple[str, ...]:
        """The primary URL, then the fallbacks, in the order failover tries them."""
        return (self.primary_url, *self.fallback_urls)

    @property
    def on_fallback(self) -> bool:
        return self.active_url != self.primary_url

    def endpoint(self, name: str) -> Endpoint | None:
        """The endpoint for a logical name: override, then learned alternative, then profile."""
        if name in self.overrides:
            return self.overrides[name]
        if name in self._learned:
            return self._learned[name]
        return PROFILES[self.profile].get(name)

    def alternative(self, name: str) -> Endpoint | None:
        """The other profile's endpoint for ``name``, when it differs and was not overridden."""
        if name in self.overrides or name in self._learned:
            return None
        current = self.endpoint(name)
        alt = PROFILES[other_profile(self.profile)].get(name)
        return alt if alt is not None and alt != current else None

    def learn(self, name: str, endpoint: Endpoint) -> None:
        """Remember that ``endpoint`` is the one this backend answers for ``name``."""
        self._learned[name] = endpoint

    def url_for(self, endpoint: Endpoint, base_url: str | None = None) -> str:
        return (base_url or self.active_url) + endpoint.path

    def health_url(self, base_url: str) -> str:
        return base_url + f"api/method/{HEALTH_METHOD}"

    def switch_to(self, base_url: str) -> None:
        if base_url not in self.candidate_urls:
            raise BackendConfigError(f"{base_url} is not one of the configured backend URLs")
        self.active_url = base_url
