"""The settings tree: every user setting, its default, and how a raw value is checked.

Settings arrive as JSON from three places (``initializationOptions``, ``workspace/configuration``
section ``oropendola``, ``workspace/didChangeConfiguration``), over defaults that the environment
may change (`environment_defaults`: ``OROPENDOLA_SERVER_URL``, as the command line uses it).
`parse_settings` reads the merged JSON field by field: a bad value is reported as a
`SettingProblem` naming the setting, and the default is kept for that field only. Names follow
the VS Code extension's (camelCase on the wire).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from oropendola_ls.backend.endpoints import (
    DEFAULT_SERVER_URL,
    PROFILE_NAMES,
    BackendConfigError,
    normalize_base_url,
    parse_endpoint_override,
)

SECTION = "oropendola"
SERVER_URL_ENV = "OROPENDOLA_SERVER_URL"


class SettingValueError(ValueError):
    """A value that does not fit its setting; the message says what is expected."""


@attrs.frozen
class SettingProblem:
    setting: str
    message: str
    unknown: bool = False
    """An unrecognised key: logged, not shown (other tools share the ``oropendola`` section)."""

    def __str__(self) -> str:
        return f"Setting {SECTION}.{self.setting}: {self.message}"


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise SettingValueError(f"expected a string, got {_describe(value)}")
    return value


def _optional_string(value: Any) -> str | None:
    return None if value is None or value == "" else _string(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingValueError(f"expected true or false, got {_describe(value)}")
    return value


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise SettingValueError(f"expected a positive number, got {_describe(value)}")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingValueError(f"expected a whole number >= 0, got {_describe(value)}")
    return value


def _byte_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SettingValueError(f"expected a positive number of bytes, got {_describe(value)}")
    return value


def _chat_transport(value: Any) -> str:
    if value not in ("auto", "sse", "realtime"):
        raise SettingValueError(f"expected 'auto', 'sse' or 'realtime', got {_describe(value)}")
    return str(value)


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise SettingValueError(f"expected a list of strings, got {_describe(value)}")
    return tuple(value)


def _url(value: Any) -> str:
    try:
        return normalize_base_url(_string(value))
    except BackendConfigError as exc:
        raise SettingValueError(str(exc)) from exc


def _url_list(value: Any) -> tuple[str, ...]:
    return tuple(_url(v) for v in _string_list(value))


def _profile(value: Any) -> str:
    """``auto`` (found out after sign-in), or one of the endpoint profiles."""
    if value != "auto" and value not in PROFILE_NAMES:
        raise SettingValueError(
            f"unknown profile {value!r}; use one of: auto, {', '.join(PROFILE_NAMES)}"
        )
    return str(value)


def _endpoints(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SettingValueError(f"expected an object of endpoint overrides, got {_describe(value)}")
    for name, entry in value.items():
        try:
            parse_endpoint_override(str(name), entry)
        except BackendConfigError as exc:
            raise SettingValueError(str(exc)) from exc
    return dict(value)


def _namespace(value: Any) -> str:
    text = _string(value)
    if text != "auto" and not text.startswith("/"):
        raise SettingValueError(f"expected 'auto', '/' or '/<site>', got {text!r}")
    return text


def _describe(value: Any) -> str:
    names = {bool: "a boolean", str: "a string", int: "a number", float: "a number",
             list: "a list", dict: "an object", type(None): "null"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"[:120]


def _setting(default: Any, check: Callable[[Any], Any], wire: str, *, secret: bool = False) -> Any:
    return attrs.field(default=default, repr=not secret, metadata={"check": check, "wire": wire})


@attrs.frozen
class Settings:
    """Every setting with its default. Wire names are in each field's metadata."""

    server_url: str = _setting(DEFAULT_SERVER_URL, _url, "serverUrl")
    fallback_urls: tuple[str, ...] = _setting((), _url_list, "fallbackUrls")
    api_request_timeout: float = _setting(600.0, _positive_number, "apiRequestTimeout")
    max_reconnect_attempts: int = _setting(10, _count, "maxReconnectAttempts")
    reconnect_interval: float = _setting(1000.0, _positive_number, "reconnectInterval")
    allowed_commands: tuple[str, ...] = _setting((), _string_list, "allowedCommands")
    denied_commands: tuple[str, ...] = _setting((), _string_list, "deniedCommands")
    command_execution_timeout: float = _setting(120.0, _positive_number, "commandExecutionTimeout")
    command_require_confirmation: bool = _setting(True, _bool, "commandRequireConfirmation")
    index_on_startup: bool = _setting(False, _bool, "indexOnStartup")
    index_exclude: tuple[str, ...] = _setting((), _string_list, "indexExclude")
    index_max_file_size: int = _setting(1 << 20, _byte_size, "indexMaxFileSize")
    analyze_on_save: bool = _setting(False, _bool, "analyzeOnSave")
    profile: str = _setting("auto", _profile, "profile")
    endpoints: Mapping[str, Any] = _setting(attrs.Factory(dict), _endpoints, "endpoints")
    realtime_namespace: str = _setting("auto", _namespace, "realtimeNamespace")
    chat_transport: str = _setting("auto", _chat_transport, "chatTransport")
    api_key: str | None = _setting(None, _optional_string, "apiKey")
    api_secret: str | None = _setting(None, _optional_string, "apiSecret", secret=True)


WIRE_NAMES: tuple[str, ...] = tuple(f.metadata["wire"] for f in attrs.fields(Settings))


def section_of(raw: Any) -> dict[str, Any]:
    """The ``oropendola`` settings inside ``raw``: accepts ``{"oropendola": {...}}`` or a flat dict.

    Clients differ: VS Code and Neovim send the whole settings tree on didChangeConfiguration,
    eglot and Helix usually send the section itself as ``initializationOptions``.
    """
    if not isinstance(raw, Mapping):
        return {}
    nested = raw.get(SECTION)
    if isinstance(nested, Mapping):
        return dict(nested)
    return {k: v for k, v in raw.items() if k != SECTION}


def environment_defaults(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Settings taken from the environment, below everything the editor sends.

    ``OROPENDOLA_SERVER_URL`` lets one shell (``oropendola-ls login``, then the editor) pick the
    backend without touching the editor's configuration."""
    url = environ.get(SERVER_URL_ENV, "").strip()
    return {"serverUrl": url} if url else {}


def parse_settings(*sources: Any) -> tuple[Settings, list[SettingProblem]]:
    """Merge ``sources`` (later wins) and check every value; bad values keep their default."""
    merged: dict[str, Any] = {}
    for source in sources:
        merged.update(section_of(source))
    values: dict[str, Any] = {}
    problems: list[SettingProblem] = []
    for field in attrs.fields(Settings):
        wire = field.metadata["wire"]
        if wire not in merged or (merged[wire] is None and field.default is not None):
            continue  # absent, or null meaning "use the default"
        try:
            values[field.name] = field.metadata["check"](merged[wire])
        except SettingValueError as exc:
            problems.append(SettingProblem(wire, f"{exc}; using the default"))
    for key in merged.keys() - set(WIRE_NAMES):
        problems.append(SettingProblem(str(key), "unknown setting, ignored", unknown=True))
    return Settings(**values), problems
