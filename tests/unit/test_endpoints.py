"""BackendConfig: URL checks, environment, profiles, overrides, alternatives, failover state."""

from __future__ import annotations

import pytest

from oropendola_ls.backend.endpoints import (
    DEFAULT_SERVER_URL,
    LOGICAL_NAMES,
    PROFILES,
    BackendConfig,
    BackendConfigError,
    Endpoint,
    environment_of,
    normalize_base_url,
    site_name,
)

SEED_NAMES = {
    "auth.login", "auth.logout", "auth.verify_session", "chat.send_message", "chat.stream",
    "chat.get_history", "user.get_info", "user.get_settings", "user.update_settings",
    "subscription.check", "subscription.get_info", "workspace.index", "workspace.search",
    "workspace.get_memory", "files.upload", "files.analyze",
}
PUBLISHED_ONLY = {
    "auth.initiate_browser", "auth.check_browser", "auth.refresh_token", "auth.logout_token",
    "usage.get_stats",
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://oropendola.ai", "https://oropendola.ai/"),
        ("https://oropendola.ai/", "https://oropendola.ai/"),
        ("  https://Oropendola.AI  ", "https://oropendola.ai/"),
        ("HTTPS://EXAMPLE.com:8443/Site", "https://example.com:8443/Site/"),
        ("https://example.com/a/b/", "https://example.com/a/b/"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/"),
        ("http://localhost:8000/", "http://localhost:8000/"),
        ("http://LOCALHOST", "http://localhost/"),
        ("http://[::1]:9000", "http://[::1]:9000/"),
        ("http://127.5.6.7", "http://127.5.6.7/"),
        ("http://dev.localhost:8000", "http://dev.localhost:8000/"),
    ],
)
def test_normalize_base_url(url: str, expected: str) -> None:
    assert normalize_base_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://oropendola.ai", "loopback"),
        ("http://10.0.0.5:8000", "loopback"),
        ("http://192.168.1.2", "loopback"),
        ("http://localhost.example.com", "loopback"),
        ("https://user:pass@oropendola.ai", "credentials"),
        ("https://user@oropendola.ai", "credentials"),
        ("http://admin:admin@127.0.0.1:8000", "credentials"),
        ("ftp://oropendola.ai", "not a backend URL"),
        ("oropendola.ai", "not a backend URL"),
        ("", "not a backend URL"),
        ("https://", "not a backend URL"),
        ("https://oropendola.ai/?x=1", "query"),
        ("https://oropendola.ai/#top", "fragment"),
        ("https://oropendola.ai:99999", "port"),
    ],
)
def test_bad_urls_refused(url: str, reason: str) -> None:
    with pytest.raises(BackendConfigError, match=reason):
        normalize_base_url(url)


def test_credentials_never_echoed_in_error() -> None:
    with pytest.raises(BackendConfigError) as info:
        BackendConfig.create("https://jane:hunter22@oropendola.ai")
    assert "hunter22" not in str(info.value)


def test_environment() -> None:
    assert BackendConfig.create().environment == "production"
    assert BackendConfig.create("https://oropendola.ai").environment == "production"
    assert BackendConfig.create("http://127.0.0.1:8000").environment == "development"
    assert BackendConfig.create("http://localhost:8000").environment == "development"
    assert BackendConfig.create("http://[::1]:8000").environment == "development"
    assert BackendConfig.create("https://staging.oropendola.ai").environment == "custom"
    assert BackendConfig.create("https://oropendola.ai/sub/").environment == "custom"
    assert environment_of(DEFAULT_SERVER_URL) == "production"
    assert site_name("https://Site.Example.com:8443/x/") == "site.example.com"


def test_environment_follows_active_url() -> None:
    config = BackendConfig.create(fallback_urls=["http://127.0.0.1:8000"])
    assert config.environment == "production"
    config.switch_to("http://127.0.0.1:8000/")
    after: str = config.environment
    assert after == "development"


def test_default_config() -> None:
    config = BackendConfig.create()
    assert config.primary_url == DEFAULT_SERVER_URL == config.active_url
    assert config.profile == "oropendola"
    assert config.fallback_urls == ()
    assert not config.on_fallback


def test_unknown_profile() -> None:
    with pytest.raises(BackendConfigError, match="unknown profile 'frappe'") as info:
        BackendConfig.create(profile="frappe")
    assert "oropendola_ai" in str(info.value)


def test_profiles_cover_the_seed_names() -> None:
    assert set(PROFILES["oropendola"]) == SEED_NAMES
    assert set(PROFILES["oropendola_ai"]) == SEED_NAMES - {"chat.stream"} | PUBLISHED_ONLY
    assert LOGICAL_NAMES == SEED_NAMES | PUBLISHED_ONLY
    for name, endpoint in PROFILES["oropendola"].items():
        assert endpoint.method == f"oropendola.{name}"


@pytest.mark.parametrize(
    ("profile", "name", "expected"),
    [
        ("oropendola", "auth.login", Endpoint("oropendola.auth.login", "POST", "none")),
        ("oropendola", "auth.verify_session", Endpoint("oropendola.auth.verify_session", "GET")),
        ("oropendola", "chat.send_message", Endpoint("oropendola.chat.send_message", "POST")),
        ("oropendola", "chat.stream", Endpoint("oropendola.chat.stream", "GET")),
        ("oropendola", "workspace.get_memory", Endpoint("oropendola.workspace.get_memory", "GET")),
        ("oropendola_ai", "auth.login", Endpoint("login", "POST", "none")),
        ("oropendola_ai", "auth.logout", Endpoint("logout", "POST")),
        ("oropendola_ai", "auth.verify_session", Endpoint("frappe.auth.get_logged_user", "GET")),
        ("oropendola_ai", "chat.send_message",
         Endpoint("oropendola_ai.oropendola_ai.api.vscode_extension.agent", "POST")),
        ("oropendola_ai", "user.get_info",
         Endpoint("oropendola_ai.oropendola_ai.api.vscode_auth.get_my_profile", "GET",
                  "access_token")),
        ("oropendola_ai", "subscription.get_info",
         Endpoint("oropendola_ai.oropendola_ai.api.user_api.get_my_subscription", "POST")),
        ("oropendola_ai", "workspace.search", Endpoint("ai_assistant.api.vector_search", "POST")),
        ("oropendola_ai", "files.upload", Endpoint("oropendola.documents.upload", "POST")),
        ("oropendola_ai", "chat.stream", None),
    ],
)
def test_profile_entries(profile: str, name: str, expected: Endpoint | None) -> None:
    assert BackendConfig.create(profile=profile).endpoint(name) == expected


def test_endpoint_path_and_urls() -> None:
    config = BackendConfig.create("https://example.com/site")
    endpoint = config.endpoint("auth.verify_session")
    assert endpoint is not None
    assert endpoint.path == "api/method/oropendola.auth.verify_session"
    assert config.url_for(endpoint) == (
        "https://example.com/site/api/method/oropendola.auth.verify_session"
    )
    assert config.url_for(endpoint, "http://127.0.0.1:1/") == (
        "http://127.0.0.1:1/api/method/oropendola.auth.verify_session"
    )
    assert config.health_url("http://127.0.0.1:1/") == "http://127.0.0.1:1/api/method/ping"
    assert config.endpoint("no.such") is None


def test_override_string_form_keeps_verb_and_auth() -> None:
    config = BackendConfig.create(endpoints={"chat.get_history": "  my_app.api.history  ",
                                             "auth.login": "login"})
    assert config.endpoint("chat.get_history") == Endpoint("my_app.api.history", "GET", "session")
    assert config.endpoint("auth.login") == Endpoint("login", "POST", "none")


def test_override_object_form() -> None:
    config = BackendConfig.create(
        profile="oropendola_ai",
        endpoints={
            "chat.send_message": {"method": "my_app.chat", "verb": "get"},
            "user.get_info": {"method": "my_app.me", "verb": "POST", "auth": "none"},
        },
    )
    assert config.endpoint("chat.send_message") == Endpoint("my_app.chat", "GET", "session")
    assert config.endpoint("user.get_info") == Endpoint("my_app.me", "POST", "none")
    assert config.endpoint("auth.login") == Endpoint("login", "POST", "none")  # untouched


@pytest.mark.parametrize(
    ("endpoints", "reason"),
    [
        ({"chat.nope": "x.y"}, "unknown endpoint 'chat.nope'"),
        ({"chat.send_message": ""}, "must be a method path"),
        ({"chat.send_message": 42}, "must be a method path"),
        ({"chat.send_message": ["x"]}, "must be a method path"),
        ({"chat.send_message": {"verb": "POST"}}, "non-empty 'method'"),
        ({"chat.send_message": {"method": "  "}}, "non-empty 'method'"),
        ({"chat.send_message": {"method": "x.y", "verb": "PUT"}}, "verb must be GET or POST"),
        ({"chat.send_message": {"method": "x.y", "auth": "bearer"}}, "auth must be"),
    ],
)
def test_bad_overrides(endpoints: dict[str, object], reason: str) -> None:
    with pytest.raises(BackendConfigError, match=reason):
        BackendConfig.create(endpoints=endpoints)


def test_alternative_and_learn() -> None:
    config = BackendConfig.create()
    alt = config.alternative("chat.get_history")
    assert alt == Endpoint("ai_assistant.api.chat.get_conversation_history", "GET")
    assert config.alternative("auth.login") == Endpoint("login", "POST", "none")
    config.learn("chat.get_history", alt)
    assert config.endpoint("chat.get_history") == alt
    assert config.alternative("chat.get_history") is None  # already learned

    ai = BackendConfig.create(profile="oropendola_ai")
    assert ai.alternative("auth.login") == Endpoint("oropendola.auth.login", "POST", "none")
    assert ai.alternative("chat.stream") == Endpoint("oropendola.chat.stream", "GET")
    assert ai.alternative("files.upload") == Endpoint("oropendola.files.upload", "POST")
    assert ai.alternative("no.such") is None


def test_no_alternative_for_overridden_names() -> None:
    config = BackendConfig.create(endpoints={"chat.get_history": "mine.history"})
    assert config.alternative("chat.get_history") is None
    assert config.alternative("chat.send_message") is not None


def test_learned_is_per_config() -> None:
    one, two = BackendConfig.create(), BackendConfig.create()
    one.learn("auth.login", Endpoint("login", "POST", "none"))
    assert two.endpoint("auth.login") == Endpoint("oropendola.auth.login", "POST", "none")


def test_fallbacks_normalised_and_deduplicated() -> None:
    config = BackendConfig.create(
        "https://a.example.com",
        fallback_urls=["https://B.example.com", "https://b.example.com/", "https://a.example.com/",
                       "http://127.0.0.1:8000", "http://127.0.0.1:8000/"],
    )
    assert config.fallback_urls == ("https://b.example.com/", "http://127.0.0.1:8000/")
    assert config.candidate_urls == (
        "https://a.example.com/", "https://b.example.com/", "http://127.0.0.1:8000/"
    )


def test_fallbacks_are_checked_too() -> None:
    with pytest.raises(BackendConfigError, match="loopback"):
        BackendConfig.create(fallback_urls=["http://backup.example.com"])


def test_switch_to() -> None:
    config = BackendConfig.create("https://a.example.com", fallback_urls=["https://b.example.com"])
    config.switch_to("https://b.example.com/")
    assert config.active_url == "https://b.example.com/" and config.on_fallback
    assert config.primary_url == "https://a.example.com/"
    config.switch_to("https://a.example.com/")
    assert not config.on_fallback
    with pytest.raises(BackendConfigError, match="not one of the configured"):
        config.switch_to("https://evil.example.com/")
    assert config.active_url == "https://a.example.com/"
