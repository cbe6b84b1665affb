"""Fixtures for the reference backend tests: a running backend on a temporary data dir."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest

from oropendola_ls.reference_backend import RunningBackend, security, start_backend

EMAIL = "jane@example.com"
PASSWORD = "correct horse battery staple"
FULL_NAME = "Jane Doe"
OTHER_EMAIL = "omar@example.com"
OTHER_PASSWORD = "another long password"


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash test passwords with a low scrypt cost; the stored hash records the cost used."""
    monkeypatch.setattr(security, "_SCRYPT_LN", 4)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "backend-data"


@pytest.fixture
async def backend(data_dir: Path) -> AsyncIterator[RunningBackend]:
    running = await start_backend(data_dir=data_dir)
    running.store.add_user(EMAIL, PASSWORD, FULL_NAME)
    try:
        yield running
    finally:
        await running.close()


_TLS = ssl.create_default_context()  # built once: httpx builds one per client otherwise (slow)


def make_client(backend: RunningBackend) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=backend.url, timeout=5.0, verify=_TLS)


@pytest.fixture
async def client(backend: RunningBackend) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(backend) as http:
        yield http


async def call(
    client: httpx.AsyncClient,
    method: str,
    *,
    sid: str | None = None,
    verb: str = "POST",
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Call ``/api/method/<method>`` sending exactly the cookie given (the jar is not used)."""
    all_headers = dict(headers or {})
    if sid is not None:
        all_headers["Cookie"] = f"sid={sid}"
    client.cookies.clear()
    response = await client.request(verb, f"api/method/{method}", headers=all_headers, **kwargs)
    client.cookies.clear()
    return response


async def login(client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD) -> str:
    response = await call(client, "login", json={"usr": email, "pwd": password})
    assert response.status_code == 200, response.text
    sid = str(set_cookies(response)["sid"].value)
    assert len(sid) == 56
    return sid


def set_cookies(response: httpx.Response) -> dict[str, Any]:
    """The response's Set-Cookie headers as morsels, by name."""
    morsels: dict[str, Any] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        morsels.update(jar.items())
    return morsels


def expired_cookie_names(response: httpx.Response) -> set[str]:
    return {
        name for name, morsel in set_cookies(response).items()
        if morsel.value == "" and morsel["max-age"] == "0"
    }


def server_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(item) for item in json.loads(body["_server_messages"])]
