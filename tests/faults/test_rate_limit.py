"""A 429 storm with ``Retry-After``: the wait is honoured by every call to that backend, retries
are bounded, the user is told when to try again, and the next normal request works.

The reference backend's control ``http/throttle`` answers the next N API calls with Frappe's
429 (``RateLimitExceededError`` envelope, ``Retry-After``); ``http/requests`` lists the calls it
saw with its own timestamps, so the spacing is measured where it matters: at the backend.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import BackendProcess, lsp_session, request, wait_until

MAX_RETRIES = 3  # BackendClient's default: four requests per call at most
CLOCK_SLACK = 0.02


def seen(backend: BackendProcess, *methods: str) -> list[dict[str, Any]]:
    log = backend.control("http/requests")["requests"]
    return [r for r in log if r["method"] in methods]


def last_method(backend: BackendProcess) -> str:
    return str(backend.control("http/requests")["requests"][-1]["method"])


async def test_429_storm_with_retry_after(config_dir: Path,
                                          start_backend: Any) -> None:
    backend: BackendProcess = start_backend(0, "--control")
    email, password, _ = backend.add_user()
    async with lsp_session("neovim", config_dir, {"serverUrl": backend.url}) as client:
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        await request(client, "oropendola/userInfo")
        info = last_method(backend)
        await request(client, "oropendola/subscription")
        plan = last_method(backend)

        # 1. A storm longer than the client's patience: each retry waits Retry-After, the
        #    call gives up after max_retries, and says when to try again.
        backend.control("http/requests", clear=True)
        backend.control("http/throttle", count=1000, retry_after=1, methods=[info])
        started = time.monotonic()
        with pytest.raises(JsonRpcException) as limited:
            await request(client, "oropendola/userInfo")
        elapsed = time.monotonic() - started
        error = limited.value
        assert error.code == types.LSPErrorCodes.RequestFailed
        assert error.data == {"kind": "rate_limited"}
        assert "is rate limiting requests" in error.message
        assert "You hit the rate limit" in error.message  # Frappe's own words
        assert "try again in 1 s (after " in error.message
        attempts = seen(backend, info)
        assert len(attempts) == MAX_RETRIES + 1
        assert all(a["status"] == 429 for a in attempts)
        for before, after in itertools.pairwise(attempts):
            assert after["start"] - before["end"] >= 1 - CLOCK_SLACK
        assert 3 <= elapsed < 6
        assert backend.control("http/requests")["max_in_flight"] == 1

        # 2. Retry-After holds for the whole client, not just the call that got it: requests
        #    made meanwhile wait too (no burst into a rate limiter), then all of them succeed.
        backend.control("http/throttle", count=0)
        backend.control("http/requests", clear=True)
        backend.control("http/throttle", count=1, retry_after=2, methods=[info, plan])
        first = asyncio.ensure_future(request(client, "oropendola/userInfo"))
        await wait_until(lambda: len(seen(backend, info)) == 1, 5)
        others = [asyncio.ensure_future(request(client, "oropendola/subscription"))
                  for _ in range(3)]
        answers = await asyncio.gather(first, *others)
        assert answers[0]["profile"]["email"] == email
        assert all(a["success"] is True for a in answers[1:])
        log = seen(backend, info, plan)
        refused = log[0]
        assert refused["status"] == 429 and refused["method"] == info
        later = log[1:]
        assert len(later) == 4 and all(r["status"] == 200 for r in later)
        assert min(r["start"] for r in later) - refused["end"] >= 2 - CLOCK_SLACK

        # 3. After the storm a normal request is answered at once.
        started = time.monotonic()
        assert (await request(client, "oropendola/userInfo"))["profile"]["email"] == email
        assert time.monotonic() - started < 1
