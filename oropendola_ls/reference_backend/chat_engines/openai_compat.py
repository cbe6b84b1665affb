"""A model behind an OpenAI-compatible chat API: Ollama, llama.cpp server, vLLM, ...

``POST {base}/chat/completions`` with ``{"model", "messages", "stream": true}``; the answer
arrives as Server-Sent Events, ``data: {...}`` lines whose ``choices[0].delta.content`` pieces
are passed on as they come, until ``data: [DONE]`` (or the end of the stream). A server that
ignores ``stream`` and answers one JSON object is understood too.

The API key is read from the environment only (`LLMConfig.from_options`), sent as
``Authorization: Bearer``, never logged and masked in every error message. Plain ``http://`` is
accepted for loopback hosts only; ``https://`` is verified. Each answer gets its own HTTP
client, so cancelling it (the caller went away) closes the upstream connection at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from oropendola_ls.backend.endpoints import is_loopback_host
from oropendola_ls.backend.redact import redact
from oropendola_ls.reference_backend.chat_engines.base import (
    ChatContext,
    ChatRequest,
    EngineError,
)

log = logging.getLogger(__name__)

BASE_URL_ENV = "OROPENDOLA_LLM_BASE_URL"
MODEL_ENV = "OROPENDOLA_LLM_MODEL"
API_KEY_ENV = "OROPENDOLA_LLM_API_KEY"
DEFAULT_TIMEOUT = 120.0
"""Seconds to wait to connect, or for the next piece of the answer."""
MAX_TIMEOUT = 3600.0
ANSWER_TIMEOUT = 900.0
"""The longest one answer may take, however steadily it streams."""
MAX_ANSWER_CHARS = 1_000_000
MAX_ERROR_BODY = 4096
MAX_CONTEXT_CHARS = 24_000
MAX_HISTORY_MESSAGES = 20
SYSTEM_PROMPT = (
    "You are Oropendola, an AI coding assistant working inside the user's editor. Answer in "
    "Markdown, concisely. When you propose a shell command, put it alone in a ```sh block; the "
    "editor asks the user before running it. When you rewrite the selected code, give the whole "
    "replacement in one fenced code block."
)
_ACTION_INSTRUCTIONS = {
    "explain": "Explain what the code does: its inputs, outputs, side effects and pitfalls.",
    "fix": "Fix the problems (see the diagnostics) and return the fixed code in one fenced "
           "block, then say briefly what you changed.",
    "improve": "Suggest concrete improvements, each with its line; give changed code in one "
               "fenced block only if you change it.",
    "document": "Add documentation (docstrings or doc comments) and return the documented code "
                "in one fenced block that replaces the selection.",
    "tests": "Write unit tests for the code in one fenced block, using the project's usual "
             "test framework.",
}


class ProviderConfigError(ValueError):
    """The model provider settings are unusable; the message names the option to fix."""


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash; https, or http on a loopback host; no credentials."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProviderConfigError(
            f"--llm-base-url {url!r} is not a URL: expected e.g. http://127.0.0.1:11434/v1")
    if parts.username or parts.password:
        raise ProviderConfigError(
            "--llm-base-url must not carry credentials: put the API key in the environment "
            f"(${API_KEY_ENV}, or the variable named by --llm-api-key-env)")
    if parts.query or parts.fragment:
        raise ProviderConfigError("--llm-base-url must not have a query or a fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ProviderConfigError(
            f"plain http:// is only allowed for loopback hosts; use https:// for {parts.hostname}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def check_timeout(value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value)
            and 0 < value <= MAX_TIMEOUT):
        raise ProviderConfigError(
            f"--llm-timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, "
            f"not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """Where the model is; ``api_key`` never shows in ``repr``."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", check_base_url(self.base_url))
        if not self.model.strip():
            raise ProviderConfigError("--llm-model must name the model, e.g. llama3.2")
        check_timeout(self.timeout)

    @property
    def completions_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @classmethod
    def from_options(
        cls,
        *,
        base_url: str | None,
        model: str | None,
        api_key_env: str | None,
        timeout: float | None,
        environ: Mapping[str, str],
    ) -> LLMConfig | None:
        """The provider the options (first) and the environment describe; None for none.

        The key comes from the variable ``api_key_env`` names (default ``OROPENDOLA_LLM_API_KEY``);
        a variable named explicitly must be set.
        """
        url = base_url or environ.get(BASE_URL_ENV) or None
        name = model or environ.get(MODEL_ENV) or None
        if url is None:
            if name is not None:
                raise ProviderConfigError(
                    f"--llm-model (or ${MODEL_ENV}) needs --llm-base-url (or ${BASE_URL_ENV})")
            for option, value in (("--llm-api-key-env", api_key_env), ("--llm-timeout", timeout)):
                if value is not None:
                    raise ProviderConfigError(f"{option} needs --llm-base-url (or "
                                              f"${BASE_URL_ENV})")
            return None
        if name is None:
            raise ProviderConfigError(
                f"--llm-base-url needs --llm-model (or ${MODEL_ENV}): the model to ask, "
                "e.g. llama3.2")
        variable = api_key_env or API_KEY_ENV
        key = environ.get(variable) or None
        if api_key_env and key is None:
            raise ProviderConfigError(
                f"--llm-api-key-env names ${api_key_env}, which is not set (or empty)")
        return cls(url, name, key, DEFAULT_TIMEOUT if timeout is None else timeout)


def _describe_context(context: ChatContext) -> str:
    """The editor context as text for the system prompt."""
    parts: list[str] = []
    if context.workspace:
        parts.append(f"Workspace: {context.workspace}")
    active = context.active_file
    if active is not None:
        where = active.display_path or "(unnamed file)"
        language = f" ({active.language})" if active.language else ""
        cursor = (f", cursor at line {active.cursor.line + 1}, column {active.cursor.character + 1}"
                  if active.cursor else "")
        parts.append(f"Active file: {where}{language}{cursor}")
        code, label = (active.selected_text, "Selected code") if active.selected_text \
            else (active.content, "File content")
        if code:
            shown = code if len(code) <= MAX_CONTEXT_CHARS else code[:MAX_CONTEXT_CHARS]
            cut = "" if shown is code else f" (first {MAX_CONTEXT_CHARS} characters)"
            parts.append(f"{label}{cut}:\n```{active.language or ''}\n{shown}\n```")
    if context.diagnostics:
        parts.append("Diagnostics:\n" + "\n".join(
            f"- lines {d.start_line}-{d.end_line}: {d.message}"
            + (f" ({d.rule})" if d.rule else "") for d in context.diagnostics[:50]))
    if context.action is not None:
        parts.append(f"Requested action: {context.action}. "
                     f"{_ACTION_INSTRUCTIONS[context.action]}")
    return "\n\n".join(parts)


def build_messages(request: ChatRequest) -> list[dict[str, str]]:
    """System prompt (with the context), the conversation so far, then the prompt."""
    described = _describe_context(request.context)
    system = SYSTEM_PROMPT + (f"\n\n{described}" if described else "")
    messages = [{"role": "system", "content": system}]
    messages += [
        {"role": entry.role, "content": entry.content}
        for entry in request.history[-MAX_HISTORY_MESSAGES:]
        if entry.role in ("user", "assistant")
    ]
    messages.append({"role": "user", "content": request.prompt})
    return messages


class OpenAICompatEngine:
    """Answers with a model behind an OpenAI-compatible ``/chat/completions``."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._tls: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"<OpenAICompatEngine {self.config.model} at {self.config.base_url}>"

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def paced(self) -> bool:
        return False

    def _fail(self, detail: str) -> EngineError:
        message = redact(f"The model provider failed: {detail}", [self.config.api_key])
        log.warning("%s", message)
        return EngineError(message, 502)

    def _client(self) -> httpx.AsyncClient:
        host = urlsplit(self.config.base_url).hostname or ""
        loopback = is_loopback_host(host)
        if self._tls is None:  # built once: httpx would build (and load CAs) per client
            self._tls = httpx.create_ssl_context()
        timeout = httpx.Timeout(self.config.timeout, connect=min(self.config.timeout, 30.0),
                                write=30.0, pool=30.0)
        return httpx.AsyncClient(timeout=timeout, verify=self._tls, trust_env=not loopback,
                                 follow_redirects=False)

    async def answer(self, request: ChatRequest) -> AsyncIterator[str]:
        messages = build_messages(request)
        payload = {"model": self.config.model, "messages": messages, "stream": True}
        headers = {"Accept": "text/event-stream"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        url = self.config.completions_url
        log.info("asking %s at %s (%d messages)", self.config.model, url, len(messages))
        total = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_TIMEOUT
        try:
            async with self._client() as client, \
                    client.stream("POST", url, json=payload, headers=headers) as response:
                if response.status_code != 200:
                    raise self._fail(f"HTTP {response.status_code} from {url}: "
                                     f"{await _error_detail(response)}")
                content_type = response.headers.get("content-type", "")
                if "text/event-stream" not in content_type:
                    text = await _whole_answer(response)
                    if text is None:
                        raise self._fail(f"{url} answered {content_type or 'no content type'} "
                                         "without a chat completion")
                    if text:
                        yield text
                    return
                async for delta in _stream_deltas(response):
                    total += len(delta)
                    if total > MAX_ANSWER_CHARS:
                        raise self._fail(f"the answer passed {MAX_ANSWER_CHARS} characters")
                    if loop.time() > deadline:
                        raise self._fail(f"no complete answer from {url} within "
                                         f"{ANSWER_TIMEOUT:g} s")
                    yield delta
        except EngineError:
            raise
        except _ProviderSaid as said:
            raise self._fail(f"{url} reported an error: {said}") from None
        except httpx.TimeoutException:
            raise self._fail(f"{url} did not answer within {self.config.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise self._fail(f"cannot reach {url}: {type(exc).__name__}: {exc}") from None


class _ProviderSaid(Exception):
    """An error object inside the stream."""


def _error_message(body: object) -> str | None:
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping):
        message = error.get("message")
        return str(message) if message else json.dumps(error)[:300]
    if isinstance(error, str):
        return error
    detail = body.get("detail") or body.get("message")
    return str(detail) if detail else None


async def _error_detail(response: httpx.Response) -> str:
    raw = b""
    async for chunk in response.aiter_bytes():
        raw += chunk
        if len(raw) >= MAX_ERROR_BODY:
            break
    text = raw[:MAX_ERROR_BODY].decode("utf-8", "replace")
    try:
        message = _error_message(json.loads(text))
    except ValueError:
        message = None
    shown = " ".join((message or text).split())
    return (shown[:300] + "…" if len(shown) > 300 else shown) or (response.reason_phrase or "")


async def _whole_answer(response: httpx.Response) -> str | None:
    raw = await response.aread()
    try:
        body: Any = json.loads(raw)
        content = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


async def _stream_deltas(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, ": comments", "event:" and "id:" lines
        data = line[5:].strip()
        if data == "[DONE]":
            return
        if not data:
            continue
        try:
            chunk: Any = json.loads(data)
        except ValueError:
            raise _ProviderSaid(f"a stream event is not JSON: {data[:80]!r}") from None
        said = _error_message(chunk) if isinstance(chunk, Mapping) and "error" in chunk else None
        if said:
            raise _ProviderSaid(said)
        try:
            content = chunk["choices"][0]["delta"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # e.g. a usage-only chunk
        if isinstance(content, str) and content:
            yield content
