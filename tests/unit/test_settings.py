"""The settings tree: defaults, merging of sources, and a clear problem per bad value."""

from __future__ import annotations

import attrs
import pytest

from oropendola_ls.settings import WIRE_NAMES, Settings, parse_settings, section_of


def test_defaults_follow_the_design() -> None:
    settings, problems = parse_settings(None)
    assert problems == []
    assert settings.server_url == "https://oropendola.ai/"
    assert settings.fallback_urls == ()
    assert settings.api_request_timeout == 600
    assert settings.max_reconnect_attempts == 10
    assert settings.reconnect_interval == 1000
    assert settings.command_execution_timeout == 120
    assert settings.command_require_confirmation is True
    assert (settings.index_on_startup, settings.analyze_on_save) == (False, False)
    assert settings.profile == "auto"
    assert settings.endpoints == {}
    assert settings.realtime_namespace == "auto"
    assert (settings.api_key, settings.api_secret) == (None, None)
    assert (settings.index_exclude, settings.index_max_file_size) == ((), 1 << 20)


def test_every_field_has_a_camel_case_wire_name() -> None:
    assert len(WIRE_NAMES) == len(attrs.fields(Settings)) == 19
    assert "serverUrl" in WIRE_NAMES and "realtimeNamespace" in WIRE_NAMES
    assert all("_" not in name for name in WIRE_NAMES)


def test_later_sources_win_and_nesting_is_accepted() -> None:
    init = {"serverUrl": "http://127.0.0.1:8000", "maxReconnectAttempts": 3}
    pulled = {"oropendola": {"serverUrl": "https://staging.example.com/app"}}
    settings, problems = parse_settings(init, pulled)
    assert problems == []
    assert settings.server_url == "https://staging.example.com/app/"
    assert settings.max_reconnect_attempts == 3


def test_null_means_default() -> None:
    settings, problems = parse_settings({"serverUrl": None, "apiKey": None})
    assert problems == [] and settings.server_url == "https://oropendola.ai/"


@pytest.mark.parametrize(
    ("raw", "setting", "words"),
    [
        ({"serverUrl": "http://oropendola.example.com"}, "serverUrl", "loopback"),
        ({"serverUrl": "ftp://x.example"}, "serverUrl", "not a backend URL"),
        ({"serverUrl": "https://user:pw@x.example"}, "serverUrl", "credentials"),
        ({"fallbackUrls": ["https://ok.example", "http://bad.example"]}, "fallbackUrls", "https"),
        ({"apiRequestTimeout": 0}, "apiRequestTimeout", "positive number"),
        ({"apiRequestTimeout": True}, "apiRequestTimeout", "boolean"),
        ({"maxReconnectAttempts": 2.5}, "maxReconnectAttempts", "whole number"),
        ({"commandRequireConfirmation": "yes"}, "commandRequireConfirmation", "true or false"),
        ({"allowedCommands": "git status"}, "allowedCommands", "list of strings"),
        ({"profile": "frappe"}, "profile", "unknown profile"),
        ({"endpoints": {"chat.send_message": {"method": "x.y", "verb": "PUT"}}}, "endpoints",
         "GET or POST"),
        ({"endpoints": ["x"]}, "endpoints", "object"),
        ({"realtimeNamespace": "site"}, "realtimeNamespace", "'/<site>'"),
        ({"apiKey": 12}, "apiKey", "string"),
    ],
)
def test_bad_value_keeps_the_default_and_names_the_setting(
    raw: dict[str, object], setting: str, words: str
) -> None:
    settings, problems = parse_settings(raw)
    assert len(problems) == 1
    problem = problems[0]
    assert problem.setting == setting and not problem.unknown
    assert str(problem).startswith(f"Setting oropendola.{setting}: ")
    assert words in str(problem) and "using the default" in str(problem)
    assert getattr(settings, _field(setting)) == getattr(Settings(), _field(setting))


def test_one_bad_value_does_not_discard_the_good_ones() -> None:
    settings, problems = parse_settings({"profile": "x", "serverUrl": "http://localhost:9000"})
    assert [p.setting for p in problems] == ["profile"]
    assert settings.server_url == "http://localhost:9000/"


def test_unknown_keys_are_flagged_as_unknown() -> None:
    _, problems = parse_settings({"serverURL": "https://x.example"})
    assert [(p.setting, p.unknown) for p in problems] == [("serverURL", True)]


def test_api_secret_is_not_in_the_repr() -> None:
    settings, _ = parse_settings({"apiKey": "key", "apiSecret": "s3cr3t-value"})
    assert settings.api_secret == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings)


def test_section_of_ignores_non_objects() -> None:
    assert section_of(None) == {} and section_of([1]) == {}
    assert section_of({"oropendola": {"a": 1}, "other": 2}) == {"a": 1}


def _field(wire: str) -> str:
    return next(f.name for f in attrs.fields(Settings) if f.metadata["wire"] == wire)


@pytest.mark.parametrize(("value", "problem"), [
    (0, "positive number of bytes"), (-5, "positive number of bytes"), ("1MB", "positive"),
    (True, "positive"),
])
def test_index_max_file_size_must_be_a_positive_byte_count(value: object, problem: str) -> None:
    settings, problems = parse_settings({"indexMaxFileSize": value, "indexExclude": ["*.csv"]})
    assert settings.index_max_file_size == 1 << 20 and settings.index_exclude == ("*.csv",)
    assert len(problems) == 1 and "oropendola.indexMaxFileSize" in str(problems[0])
    assert problem in str(problems[0])
