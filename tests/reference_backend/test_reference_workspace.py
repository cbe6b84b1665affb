"""workspace.index / search / get_memory and files.analyze over HTTP, under both profiles' names."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from oropendola_ls.backend.endpoints import PROFILES, Endpoint
from oropendola_ls.reference_backend import RunningBackend, workspace_methods

from .conftest import EMAIL, OTHER_EMAIL, OTHER_PASSWORD, call, login, server_messages

SEED = PROFILES["oropendola"]
AI = PROFILES["oropendola_ai"]

CONFIG_PY = """\
import json


def parse_config(path):
    with open(path) as handle:
        return json.load(handle)
"""


async def message(client: httpx.AsyncClient, method: str, sid: str, **kwargs: Any) -> Any:
    response = await call(client, method, sid=sid, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()["message"]


async def refused(client: httpx.AsyncClient, method: str, sid: str, **kwargs: Any) -> str:
    """The message of a 417 ValidationError answer."""
    response = await call(client, method, sid=sid, **kwargs)
    assert response.status_code == 417, response.text
    assert response.json()["exc_type"] == "ValidationError"
    [msg] = server_messages(response.json())
    return str(msg["message"])


async def index(client: httpx.AsyncClient, sid: str, body: dict[str, Any],
                profile: Mapping[str, Endpoint] = SEED) -> Any:
    return await message(client, profile["workspace.index"].method, sid, json=body)


async def search(client: httpx.AsyncClient, sid: str, query: str,
                 profile: Mapping[str, Endpoint] = SEED, **extra: Any) -> list[dict[str, Any]]:
    answer = await message(client, profile["workspace.search"].method, sid,
                           json={"query": query, **extra})
    assert answer["success"] is True
    return list(answer["data"]["results"])


async def test_index_then_search_finds_the_file_and_line(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    answer = await index(client, sid, {
        "workspace_id": "repo-1",
        "workspace_name": "Repo",
        "files": [
            {"path": "src/config.py", "language": "python", "content": CONFIG_PY,
             "sha256": "0" * 64, "size": len(CONFIG_PY)},
            {"path": "README.md", "content": "# Repo\nHow to parse the config file.\n"},
        ],
    })
    assert answer == {"success": True, "workspace_id": "repo-1", "indexed": 2, "removed": 0,
                      "chunks": 2}
    results = await search(client, sid, "parse_config")
    assert results[0] == {
        "workspace_id": "repo-1",
        "path": "src/config.py",
        "startLine": 4,
        "endLine": 4,
        "snippet": "def parse_config(path):",
        "score": results[0]["score"],
    }
    assert results[0]["score"] > 0
    assert [r["path"] for r in results] == ["src/config.py", "README.md"]
    ai_results = await search(client, sid, "parse_config", profile=AI)
    assert ai_results == results
    assert await search(client, sid, "parse_config", limit=1) == results[:1]
    assert await search(client, sid, "parse_config", workspace_id="elsewhere") == []


@pytest.mark.parametrize("query", ["", "   ", '"', "AND", "*", "NEAR(", "-x", "(((", "'"])
async def test_blank_and_hostile_queries_answer_normally(
    client: httpx.AsyncClient, query: str
) -> None:
    sid = await login(client)
    await index(client, sid, {"workspace_id": "ws",
                              "files": [{"path": "a.py", "content": "unrelated"}]})
    assert await search(client, sid, query) == []


async def test_reindex_replaces_and_removed_disappears(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    await index(client, sid, {"workspace_id": "ws", "files": [
        {"path": "a.py", "content": "legacy = 1\n"},
        {"path": "b.py", "content": "kept = 2\n"},
    ]})
    replaced = await index(client, sid, {"workspace_id": "ws", "files": [
        {"path": "a.py", "content": "\n\nmodern = 1\n"},
    ]}, profile=AI)
    assert (replaced["indexed"], replaced["chunks"]) == (1, 1)
    assert await search(client, sid, "legacy") == []
    [hit] = await search(client, sid, "modern")
    assert (hit["path"], hit["startLine"]) == ("a.py", 3)
    removed = await index(client, sid, {"workspace_id": "ws", "files": [],
                                        "removed": ["b.py", "never.py"]})
    assert (removed["indexed"], removed["removed"], removed["chunks"]) == (0, 1, 0)
    assert await search(client, sid, "kept") == []
    rebuilt = await index(client, sid, {"workspace_id": "ws", "force_rebuild": True, "files": [
        {"path": "c.py", "content": "fresh = 3\n"},
    ]})
    assert rebuilt["indexed"] == 1
    assert await search(client, sid, "modern") == []


async def test_another_user_does_not_see_the_index(
    client: httpx.AsyncClient, backend: RunningBackend
) -> None:
    backend.store.add_user(OTHER_EMAIL, OTHER_PASSWORD)
    jane = await login(client)
    omar = await login(client, OTHER_EMAIL, OTHER_PASSWORD)
    await index(client, jane, {"workspace_id": "shared-name",
                               "files": [{"path": "secret.py", "content": "jane_secret = 1"}]})
    assert await search(client, omar, "jane_secret") == []
    assert await search(client, omar, "jane_secret", workspace_id="shared-name") == []
    memory = await message(client, SEED["workspace.get_memory"].method, omar, verb="GET")
    assert memory["workspaces"] == []
    await index(client, omar, {"workspace_id": "shared-name", "force_rebuild": True,
                               "files": []})
    assert [r["path"] for r in await search(client, jane, "jane_secret")] == ["secret.py"]


async def test_memory_counts_workspaces_and_recent_conversations(
    client: httpx.AsyncClient, backend: RunningBackend
) -> None:
    sid = await login(client)
    await index(client, sid, {"workspace_id": "repo", "workspace_name": "My Repo", "files": [
        {"path": "a.py", "content": "\n".join(f"line_{n}" for n in range(50))},
        {"path": "b.py", "content": "x = 1\n"},
        {"path": "web/app.ts", "content": "let y = 2\n"},
        {"path": "LICENSE", "content": "MIT\n"},
    ]})
    store = backend.store
    store.add_user(OTHER_EMAIL, OTHER_PASSWORD)
    long_prompt = "Explain   this\nplease " + "very " * 40
    store.add_chat_message("c1", EMAIL, "user", "first question")
    store.add_chat_message("c1", EMAIL, "assistant", "an answer")
    store.add_chat_message("c2", EMAIL, "user", long_prompt)
    store.add_chat_message("c1", EMAIL, "user", "a follow-up")
    store.add_chat_message("other", OTHER_EMAIL, "user", "not jane's")
    for profile, verb in ((SEED, "GET"), (AI, "POST")):
        memory = await message(client, profile["workspace.get_memory"].method, sid, verb=verb)
        assert memory["success"] is True
        [workspace] = memory["workspaces"]
        assert workspace | {"last_indexed": "-"} == {
            "workspace_id": "repo", "name": "My Repo", "files": 4, "chunks": 5,
            "bytes": len("\n".join(f"line_{n}" for n in range(50))) + 6 + 10 + 4,
            "languages": {"python": 2, "plaintext": 1, "typescript": 1},
            "last_indexed": "-",
        }
        assert workspace["last_indexed"].endswith("Z")
        conversations = memory["recent_conversations"]
        assert [c["conversation_id"] for c in conversations] == ["c1", "c2"]
        assert conversations[0]["title"] == "first question"
        assert len(conversations[1]["title"]) == 80
        assert conversations[1]["title"].startswith("Explain this please very")
        assert conversations[1]["title"].endswith("…")
        assert all(c["updated"].endswith("Z") and "T" in c["updated"] for c in conversations)
    only_repo = await message(client, SEED["workspace.get_memory"].method, sid,
                              params={"workspace_id": "nope"}, verb="GET")
    assert only_repo["workspaces"] == []


async def test_seed_extension_shape_is_indexed_by_symbol_names(
    client: httpx.AsyncClient,
) -> None:
    sid = await login(client)
    files = [{"path": "src/app.js", "language": "javascript",
              "symbols": ["startServer", {"name": "handleRequest", "kind": "function"}]}]
    answer = await message(client, AI["workspace.index"].method, sid, data={
        "workspace_path": "/home/jane/projects/shop",
        "files": json.dumps(files),
        "force_rebuild": "false",
    })
    assert answer["indexed"] == 1 and answer["chunks"] == 1
    assert answer["workspace_id"].startswith("path-")
    [hit] = await search(client, sid, "handle request")
    assert (hit["path"], hit["snippet"]) == ("src/app.js", "handleRequest")
    memory = await message(client, SEED["workspace.get_memory"].method, sid)
    assert memory["workspaces"][0]["name"] == "shop"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"workspace_id": "has space", "files": []}, "workspace_id must be 1-100 characters"),
        ({"workspace_id": "x" * 101, "files": []}, "workspace_id must be 1-100 characters"),
        ({"files": {"path": "a"}}, "files must be a list"),
        ({"files": ["a.py"]}, "files[0] must be an object"),
        ({"files": [{"content": "x"}]}, "files[0].path must be a string"),
        ({"files": [{"path": "/etc/passwd", "content": "x"}]}, "must be relative"),
        ({"files": [{"path": "a/../../b", "content": "x"}]}, "'..' segments"),
        ({"files": [{"path": "a.py", "content": 3}]}, "files[0].content must be the file's text"),
        ({"files": [{"path": "a.py", "content": "", "sha256": "zz"}]}, "64 hexadecimal"),
        ({"files": [{"path": "a.py", "content": "", "size": -1}]}, "non-negative integer"),
        ({"files": [{"path": "a.py", "symbols": "main"}]}, "symbols must be a list"),
        ({"files": [{"path": "a.py", "content": ""}, {"path": "a.py", "content": ""}]},
         "given twice"),
        ({"files": [{"path": "a.py", "content": ""}], "removed": ["a.py"]},
         "both indexed and removed"),
        ({"files": [], "removed": "a.py"}, "removed must be a list"),
        ({"files": [], "removed": [3]}, "removed must be a list of at most"),
        ({"files": [], "force_rebuild": "maybe"}, "force_rebuild must be true or false"),
        ({"files": [{"path": f"f{n}", "content": ""} for n in range(2001)]},
         "2001 files in one call is too many"),
    ],
)
async def test_index_refuses_invalid_arguments(
    client: httpx.AsyncClient, body: dict[str, Any], expected: str
) -> None:
    sid = await login(client)
    assert expected in await refused(client, SEED["workspace.index"].method, sid, json=body)


async def test_index_refuses_too_much_content_in_one_call(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workspace_methods, "MAX_INDEX_BYTES", 1000)  # the real 32 MiB passes the body limit
    sid = await login(client)
    files = [{"path": f"f{n}.py", "content": "é" * 300} for n in range(2)]
    assert "smaller batches" in await refused(
        client, SEED["workspace.index"].method, sid, json={"files": files}
    )


async def test_search_refuses_invalid_arguments(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    method = SEED["workspace.search"].method
    assert "limit must be between 1 and 100" in await refused(
        client, method, sid, json={"query": "x", "limit": 101}
    )
    assert "limit must be an integer" in await refused(
        client, method, sid, json={"query": "x", "limit": "ten"}
    )
    assert "query must be a string" in await refused(client, method, sid, json={"query": 3})
    assert "workspace_id must be" in await refused(
        client, method, sid, json={"query": "x", "workspace_id": "a/b"}
    )


async def test_guests_are_refused(client: httpx.AsyncClient) -> None:
    for logical in ("workspace.index", "workspace.search", "workspace.get_memory",
                    "files.analyze"):
        for profile in (SEED, AI):
            response = await call(client, profile[logical].method, json={})
            assert response.status_code == 403, (logical, response.text)


async def test_analyze_returns_findings_under_both_names(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    content = "import os\n\ndef f(items=[]):\n    try:\n        pass\n    except:\n        pass \n"
    answers = [
        await message(client, profile["files.analyze"].method, sid,
                      json={"path": "pkg/mod.py", "content": content})
        for profile in (SEED, AI)
    ]
    assert answers[0] == answers[1]
    data = answers[0]["data"]
    assert (data["status"], data["analysis_type"]) == ("completed", "summary")
    assert data["result"]["characters"] == len(content)
    assert data["result"]["lines"] == 7
    assert data["result"]["language"] == "python"
    assert "3 warning" in data["result"]["summary"]
    assert [(f["rule"], f["severity"], f["startLine"]) for f in data["findings"]] == [
        ("unused-import", "warning", 1),
        ("mutable-default", "warning", 3),
        ("bare-except", "warning", 6),
        ("trailing-whitespace", "info", 7),
    ]
    assert data["findings"][0] == {
        "rule": "unused-import", "severity": "warning",
        "message": "'os' is imported but never used",
        "startLine": 1, "startColumn": 7, "endLine": 1, "endColumn": 9,
    }


async def test_analyze_reads_language_and_the_documents_shape(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    method = AI["files.analyze"].method
    by_language = await message(client, method, sid,
                                json={"content": "def broken(:\n", "language": "python"})
    [finding] = by_language["data"]["findings"]
    assert finding["rule"] == "syntax-error" and finding["severity"] == "error"
    documents = await message(client, method, sid, json={
        "content": "import sys\n", "metadata": {"file_path": "tool.py"},
        "analysis_type": "summary",
    })
    assert [f["rule"] for f in documents["data"]["findings"]] == ["unused-import"]
    plain = await message(client, method, sid, json={"content": "import sys\n"})
    assert plain["data"]["findings"] == []
    assert plain["data"]["result"]["language"] is None
    empty = await message(client, method, sid, json={"content": ""})
    assert (empty["data"]["result"]["lines"], empty["data"]["findings"]) == (0, [])


async def test_analyze_refuses_invalid_content(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = await login(client)
    method = SEED["files.analyze"].method
    assert "content is required" in await refused(client, method, sid, json={})
    assert "content must be the file's text" in await refused(
        client, method, sid, json={"content": ["a"]}
    )
    monkeypatch.setattr(workspace_methods, "MAX_ANALYZE_BYTES", 100)
    assert "too large to analyse" in await refused(
        client, method, sid, json={"content": "é" * 51}
    )
