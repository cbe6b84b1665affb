"""The offline chat engine: deterministic answers for each action, and chat over HTTP and SSE."""

from __future__ import annotations

import ast
import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from oropendola_ls.backend.endpoints import PROFILES
from oropendola_ls.reference_backend import RunningBackend
from oropendola_ls.reference_backend.chat_engines import (
    HEADER,
    ChatRequest,
    ContextError,
    IndexLookup,
    OfflineEngine,
    parse_context,
)
from oropendola_ls.reference_backend.chat_engines.offline import compose_answer
from oropendola_ls.reference_backend.search_index import SearchIndex, SourceFile

from .conftest import EMAIL, OTHER_EMAIL, call, login

SEND = PROFILES["oropendola"]["chat.send_message"].method
AGENT = PROFILES["oropendola_ai"]["chat.send_message"].method
STREAM = PROFILES["oropendola"]["chat.stream"].method
HISTORY = PROFILES["oropendola"]["chat.get_history"].method
TIMEOUT = 5.0

MODULE = '''"""Settings files."""

import json
import os
from typing import Any, Optional


def load(path: str, strict: bool = False) -> dict[str, Any]:
    """Read a settings file."""
    with open(path) as handle:
        data = json.load(handle)
    if strict and not isinstance(data, dict):
        raise ValueError(f"{path} does not hold an object")
    return data


def merge(base, extra=None, *, keep=()):
    if extra is None:
        return dict(base)
    return {**base, **extra}


class Settings(Mapping):
    """Settings with defaults."""

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)


def _private(x):
    return x
'''
PATH = "src/confkit/settings.py"


def ask(action: str | None, prompt: str = "Help", lookup: IndexLookup | None = None,
        **active_file: Any) -> str:
    context: dict[str, Any] = {"activeFile": {"relativePath": PATH, **active_file}}
    if action is not None:
        context["action"] = action
    return compose_answer(ChatRequest(prompt, context=parse_context(context), workspace=lookup))


def code_blocks(answer: str) -> list[tuple[str, str]]:
    """(info string, code) of each fenced block."""
    return re.findall(r"^```(\w*)\n(.*?)\n```$", answer, re.MULTILINE | re.DOTALL)


@pytest.fixture
def index(tmp_path: Path) -> SearchIndex:
    search_index = SearchIndex(tmp_path)
    search_index.index(EMAIL, "ws1", [
        SourceFile("web/loader.ts", "import { parseConfig } from './config'\n"
                   "export const load = () => parseConfig('a')\n"),
        SourceFile("web/config.ts", "export function parseConfig(text: string) {\n"
                   "  return JSON.parse(text)\n}\n"),
        SourceFile("scripts/build.sh", "#!/bin/sh\nparse_config_files --all\n"),
    ])
    search_index.index(EMAIL, "ws2", [SourceFile("other/config.ts", "parseConfig()\n")])
    search_index.index(OTHER_EMAIL, "ws1", [SourceFile("theirs.ts", "parseConfig()\n")])
    return search_index


# -- explain -------------------------------------------------------------------------------------


def test_explain_python_lists_what_each_definition_takes_returns_calls_and_raises() -> None:
    assert ask("explain", content=MODULE) == f"""\
{HEADER} a static reading of `{PATH}` (python, 31 lines), not an AI explanation.

### `def load(path: str, strict: bool = False) -> dict[str, Any]` (line 8)
Read a settings file.
- **Takes:** `path: str`, `strict: bool = False`
- **Returns:** `dict[str, Any]` (the variable `data`)
- **Calls:** `isinstance`, `json.load`, `open`
- **Raises:** `ValueError`

### `def merge(base, extra=None, *, keep=())` (line 17)
- **Takes:** `base`, `extra=None`, `keep=()`
- **Returns:** the result of `dict()`, a dict
- **Calls:** `dict`
- **Raises:** nothing explicitly

### `class Settings(Mapping)` (line 23)
Settings with defaults.
- **Methods:** `get`

### `def get(self, key: str, default: Any = None) -> Any` (line 26, method of `Settings`)
- **Takes:** `key: str`, `default: Any = None`
- **Returns:** `Any` (the result of `self._values.get()`)
- **Calls:** `self._values.get`
- **Raises:** nothing explicitly

### `def _private(x)` (line 30)
- **Takes:** `x`
- **Returns:** the variable `x`
- **Calls:** nothing
- **Raises:** nothing explicitly
"""


def test_explain_a_selected_method_numbers_lines_in_the_file() -> None:
    selection = "def get(self, key: str, default: Any = None) -> Any:\n" \
                "        return self._values.get(key, default)"
    answer = ask(None, prompt="Explain this, please", content=MODULE, selectedText=selection)
    assert answer.startswith(f"{HEADER} a static reading of the selection (python, 2 lines)")
    assert "### `def get(self, key: str, default: Any = None) -> Any` (line 26, method)" in answer
    # without the file, the selection's own lines are counted
    alone = ask("explain", selectedText=selection)
    assert "(line 1 of the selection, method)" in alone


def test_explain_other_languages_by_pattern_with_related_files(index: SearchIndex) -> None:
    code = ("import { readFile } from 'fs'\n\nexport function parseConfig(text: string) {\n"
            "  return JSON.parse(text)\n}\n\nexport class ConfigError extends Error {}\n"
            "const load = async (path) => parseConfig(await readFile(path))\n")
    lookup = IndexLookup(index, EMAIL, "ws1")
    answer = ask("explain", lookup=lookup, content=code, relativePath="web/config.ts",
                 language="typescript")
    assert answer == f"""\
{HEADER} a static reading of `web/config.ts` (typescript, 8 lines), not an AI explanation.

**Definitions** (recognised by pattern, not parsed):
- line 3: function `parseConfig`
- line 7: class `ConfigError`
- line 8: function `load`

**Related files in the workspace index:**
- `web/loader.ts:2`: `export const load = () => parseConfig('a')`
- `scripts/build.sh:2`: `parse_config_files --all`
"""
    # other workspaces and other users' files are not "related"
    assert "other/config.ts" not in answer and "theirs.ts" not in answer
    everywhere = ask("explain", lookup=IndexLookup(index, EMAIL), content=code,
                     relativePath="web/config.ts", language="typescript")
    assert "`other/config.ts:1`" in everywhere and "theirs.ts" not in everywhere


def test_explain_python_that_does_not_parse_falls_back_to_patterns() -> None:
    answer = ask("explain", content="def broken(:\n    pass\nclass Fine:\n    pass\n")
    assert "Read by pattern: it does not parse as Python (invalid syntax, line 1)." in answer
    assert "- line 1: definition `broken`\n- line 3: definition `Fine`\n" in answer


# -- document ------------------------------------------------------------------------------------


def test_document_inserts_google_style_skeletons_in_a_python_block() -> None:
    answer = ask("document", content=MODULE)
    head = answer.split("\n", 1)[0]
    assert head == (f"{HEADER} docstring skeletons (Google style) for `merge`, `Settings.get`, "
                    f"`_private` in `{PATH}`; replace each TODO.")
    [(info, code)] = code_blocks(answer)
    assert info == "python"
    tree = ast.parse(code)
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert ast.get_docstring(functions["load"]) == "Read a settings file."  # kept as it was
    assert ast.get_docstring(functions["get"]) == (
        "TODO: Summarize what get does.\n\n"
        "Args:\n"
        "    key (str): TODO: describe key.\n"
        "    default (Any, optional): TODO: describe default. Defaults to None.\n\n"
        "Returns:\n"
        "    Any: TODO: describe the result."
    )
    assert ast.get_docstring(functions["merge"]) == (
        "TODO: Summarize what merge does.\n\n"
        "Args:\n"
        "    base: TODO: describe base.\n"
        "    extra: TODO: describe extra. Defaults to None.\n"
        "    keep: TODO: describe keep. Defaults to ().\n\n"
        "Returns:\n"
        "    TODO: describe the result."
    )
    assert answer.endswith("\n```\n\nAlready documented: `load`.\n")
    # everything else is unchanged: take the new docstrings out and the file is as it was
    new_docstrings = {
        line for node in functions.values()
        if (ast.get_docstring(node) or "").startswith("TODO: Summarize")
        for line in range(node.body[0].lineno, node.body[0].end_lineno + 1)  # type: ignore[operator]
    }
    kept = [text for number, text in enumerate(code.split("\n"), 1)
            if number not in new_docstrings]
    assert kept == MODULE.rstrip("\n").split("\n")


def test_document_a_selection_gives_its_replacement_with_raises_and_yields() -> None:
    content = ("class Reader:\n    def rows(self, path: str, limit: int = 10):\n"
               "        if limit < 0:\n            raise ValueError(limit)\n"
               "        yield from open(path)\n")
    selection = content.split("\n", 1)[1].lstrip().rstrip("\n")  # from `def` to the end
    answer = ask("document", content=content, selectedText=selection)
    [(_info, code)] = code_blocks(answer)
    assert code == (
        'def rows(self, path: str, limit: int = 10):\n'
        '        """TODO: Summarize what rows does.\n\n'
        '        Args:\n'
        '            path (str): TODO: describe path.\n'
        '            limit (int, optional): TODO: describe limit. Defaults to 10.\n\n'
        '        Yields:\n'
        '            TODO: describe each item.\n\n'
        '        Raises:\n'
        '            ValueError: TODO: say when.\n'
        '        """\n'
        '        if limit < 0:\n'
        '            raise ValueError(limit)\n'
        '        yield from open(path)'
    )
    # put back where the selection was, the file still parses
    ast.parse(content.replace(selection, code))


def test_document_says_when_there_is_nothing_to_do() -> None:
    assert ask("document", content='def f():\n    """Done."""\n') == (
        f"{HEADER} nothing to document in `{PATH}`: every function already has a docstring."
        "\n\nAlready documented: `f`.")
    assert ask("document", content="X = 1\n") == (
        f"{HEADER} nothing to document in `{PATH}`: it defines no function.")
    assert ask("document", content="fn main() {}\n", relativePath="main.rs") == (
        f"{HEADER} docstring skeletons are written for Python only; `main.rs` (rust, 1 line) "
        "is not Python.")


# -- fix -----------------------------------------------------------------------------------------


def test_fix_removes_unused_imports_and_the_result_parses() -> None:
    answer = ask("fix", content=MODULE)
    assert answer.startswith(
        f"{HEADER} removed 2 unused imports from `{PATH}`.\n\n"
        "- line 4: removed `import os`\n"
        "- line 5: `from typing import Any, Optional` → `from typing import Any`\n\n```python\n")
    [(info, code)] = code_blocks(answer)
    assert info == "python"
    assert code + "\n" == MODULE.replace("import os\n", "").replace(", Optional", "")
    ast.parse(code)


def test_fix_keeps_blocks_valid_and_wraps_long_imports() -> None:
    content = ("try:\n    import yaml\nexcept ImportError:\n    yaml = None\n"
               "if True:\n    import os, re\n    from pkg.very.long.module.name import (\n"
               "        alpha_function_name, beta_function_name, gamma_function_name,\n"
               "        delta_function_name)\n"
               "print(re, alpha_function_name, beta_function_name, gamma_function_name)\n")
    answer = ask("fix", content=content, relativePath="x.py")
    [(_info, code)] = code_blocks(answer)
    assert code == (
        "try:\n    pass\nexcept ImportError:\n    yaml = None\n"
        "if True:\n    import re\n    from pkg.very.long.module.name import (\n"
        "        alpha_function_name,\n        beta_function_name,\n"
        "        gamma_function_name,\n    )\n"
        "print(re, alpha_function_name, beta_function_name, gamma_function_name)"
    )
    assert "- line 2: `import yaml` → `pass`" in answer
    assert "- line 6: `import os, re` → `import re`" in answer
    ast.parse(code)


def test_fix_in_a_selection_keeps_imports_the_rest_of_the_file_uses() -> None:
    content = "import os\nimport sys\n\n\ndef main():\n    print(sys.argv)\n"
    answer = ask("fix", content=content, selectedText="import os\nimport sys\n")
    assert answer.startswith(f"{HEADER} removed 1 unused import from the selection.\n\n"
                             "- line 1: removed `import os`\n")
    assert code_blocks(answer) == [("python", "import sys")]


def test_fix_of_a_selection_that_is_only_the_unused_import_leaves_nothing() -> None:
    content = "import os\nimport sys\n\n\ndef main():\n    print(sys.argv)\n"
    answer = ask("fix", content=content, selectedText="import os\n")
    assert "- line 1: removed `import os`" in answer
    assert "pass" not in answer  # the module's body may be empty, a function's may not
    blocks = re.findall(r"^```python\n(.*?)```$", answer, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1 and not blocks[0].strip()


def test_fix_says_so_when_there_is_nothing_it_can_fix() -> None:
    content = "def add(item, items=[]):\n    items.append(item)\n    return items\n"
    diagnostics = [{"message": "mutable default", "rule": "mutable-default",
                    "startLine": 1, "endLine": 1}]
    context = {"action": "fix", "diagnostics": diagnostics,
               "activeFile": {"relativePath": "a.py", "content": content}}
    answer = compose_answer(ChatRequest("Fix it", context=parse_context(context)))
    assert answer == (
        f"{HEADER} nothing I can fix in `a.py`: the offline engine only removes unused imports, "
        "and the static checks found none to remove.\n\n"
        "Not fixed (the offline engine only removes unused imports):\n"
        "- line 1: mutable default (mutable-default)\n")
    assert code_blocks(answer) == []


# -- improve -------------------------------------------------------------------------------------


def test_improve_lists_findings_by_line_and_rewrites_mutable_defaults() -> None:
    content = ("def add(item, items: list[str] = [], *, seen={}):\n"
               '    """Add."""\n'
               "    try:\n        items.append(item)\n    except:\n        pass\n"
               "    return items  # " + "x" * 120 + "\n")
    answer = ask("improve", content=content, relativePath="lib.py")
    lines = answer.split("\n")
    assert lines[0] == (f"{HEADER} 4 suggestions from static checks of `lib.py` (python, "
                        "7 lines).")
    assert lines[2].startswith("1. line 1: parameter 'items' of 'add' defaults to a list")
    assert lines[2].endswith("(rewritten below).")
    assert lines[3].startswith("2. line 1: parameter 'seen' of 'add' defaults to a dict")
    assert lines[4].startswith("3. line 5: bare 'except:' also catches KeyboardInterrupt")
    assert lines[5] == "4. line 7: line is 140 characters long (more than 120); wrap it."
    [(_info, code)] = code_blocks(answer)
    assert code.split("\n")[:7] == [
        "def add(item, items: list[str] | None = None, *, seen=None):",
        '    """Add."""',
        "    if items is None:",
        "        items = []",
        "    if seen is None:",
        "        seen = {}",
        "    try:",
    ]
    ast.parse(code)


def test_improve_without_findings_is_prose_only() -> None:
    answer = ask("improve", content="def f(x):\n    return x\n")
    assert answer.startswith(f"{HEADER} no suggestions for `{PATH}` (python, 2 lines)")
    assert "```" not in answer
    plain = ask("improve", content="a  \nb\n", relativePath="notes.txt")
    assert "1. line 1: trailing whitespace on 1 line; strip it." in plain
    assert "```" not in plain


# -- tests ---------------------------------------------------------------------------------------


def test_tests_action_writes_a_pytest_skeleton_importing_the_module() -> None:
    assert ask("tests", content=MODULE) == f"""\
{HEADER} a pytest skeleton for `load`, `merge` from `confkit.settings`; save it as \
`tests/test_settings.py` and replace each TODO.

```python
\"\"\"Tests for confkit.settings.\"\"\"

import pytest

from confkit.settings import load, merge


def test_load() -> None:
    path = ...  # TODO: a str
    result = load(path)
    assert result == ...  # TODO: the expected dict[str, Any]


def test_load_raises_value_error() -> None:
    with pytest.raises(ValueError):
        load(...)  # TODO: arguments that raise ValueError


def test_merge() -> None:
    base = ...  # TODO: a value
    result = merge(base)
    assert result == ...  # TODO: the expected value
```
"""
    [(_info, code)] = code_blocks(ask("tests", content=MODULE))
    ast.parse(code)


def test_tests_for_async_functions_and_unknown_modules() -> None:
    answer = ask("tests", content="async def fetch(url, *, retries):\n    return url\n",
                 relativePath=None, language="python")
    [(_info, code)] = code_blocks(answer)
    assert "from module_under_test import fetch  # TODO: the module's import name" in code
    assert "    retries = ...  # TODO: a value\n    result = asyncio.run(fetch(url, " \
           "retries=retries))" in code
    assert "(no module path was given: fix the import)" in answer
    assert ask("tests", content="def _hidden():\n    pass\n") == (
        f"{HEADER} no public module-level function in `{PATH}` to write tests for.")


# -- plain chat ----------------------------------------------------------------------------------


def test_plain_chat_answers_with_index_hits(index: SearchIndex) -> None:
    request = ChatRequest("Where is parseConfig defined?",
                          context=parse_context({"workspace_id": "ws1"}),
                          workspace=IndexLookup(index, EMAIL, "ws1"))
    answer = compose_answer(request)
    assert answer == f"""\
{HEADER} this is the Oropendola reference backend; it answers from your workspace index, \
not from a model.

> Where is parseConfig defined?

Best matches in your workspace index for `parseconfig`, `parse`, `config`, `defined`:

**1. `web/loader.ts:1`** (workspace `ws1`)
```typescript
import {{ parseConfig }} from './config'
```

**2. `web/config.ts:1`** (workspace `ws1`)
```typescript
export function parseConfig(text: string) {{
```

**3. `scripts/build.sh:2`** (workspace `ws1`)
```text
parse_config_files --all
```
"""
    assert compose_answer(request) == answer  # deterministic
    assert "```sh" not in answer  # shell snippets are quoted as text: they are not commands


def test_plain_chat_is_honest_when_nothing_matches(index: SearchIndex) -> None:
    nothing = compose_answer(ChatRequest("What is 2+2?",
                                         workspace=IndexLookup(index, EMAIL)))
    assert nothing.split("\n")[2:] == [
        "> What is 2+2?", "",
        "I am the offline engine: nothing in your workspace index matches, and I cannot answer "
        "general questions. Connect a model for real answers: `oropendola-ls backend "
        "--llm-base-url URL --llm-model NAME` (any OpenAI-compatible server: Ollama, "
        "llama.cpp, vLLM).", ""]
    unindexed = compose_answer(ChatRequest("zebra", workspace=IndexLookup(index, "new@x.org")))
    assert "your workspace is not indexed yet" in unindexed


def test_plain_chat_offers_one_shell_command_for_running_tests(index: SearchIndex) -> None:
    python = ask(None, prompt="How do I run the tests?", content="x = 1\n")
    assert python.endswith("To run the tests (your editor asks before it runs anything):\n\n"
                           "```sh\npytest -q\n```\n")
    assert [info for info, _code in code_blocks(python)] == ["sh"]
    from_index = compose_answer(ChatRequest("how to install dependencies",
                                            workspace=IndexLookup(index, EMAIL, "ws1")))
    assert from_index.endswith("```sh\nnpm install\n```\n")  # the index is mostly TypeScript
    unknown = compose_answer(ChatRequest("how do I run the tests"))
    assert "```" not in unknown and "`pytest -q` (Python)" in unknown


def test_actions_without_code_say_so() -> None:
    answer = compose_answer(ChatRequest("Fix", context=parse_context({"action": "fix"})))
    assert answer == (f"{HEADER} there is no code to fix: the request carries no selection and "
                      "no file content (`context.activeFile.selectedText` or `content`).")


async def test_the_engine_streams_the_composed_answer_in_deltas() -> None:
    engine = OfflineEngine()
    request = ChatRequest("Explain", context=parse_context(
        {"activeFile": {"relativePath": "a.py", "content": MODULE}}))
    deltas = [delta async for delta in engine.answer(request)]
    assert 3 <= len(deltas) <= 64
    assert "".join(deltas) == compose_answer(request)
    assert engine.model == "reference-echo" and engine.paced


# -- the context ---------------------------------------------------------------------------------


def test_context_is_read_from_an_object_or_a_json_string() -> None:
    value = {"workspace": "demo", "workspace_id": "ws-1", "extra": {"ignored": True},
             "activeFile": {"path": "/w/a.py", "relativePath": "a.py", "language": "python",
                            "content": "x", "selectedText": "x", "lineCount": 1,
                            "cursorPosition": {"line": 0, "character": 1}},
             "action": "Explain",
             "diagnostics": [{"message": "m", "startLine": 3, "endLine": 2, "severity": 1}]}
    parsed = parse_context(value)
    assert parse_context(json.dumps(value)) == parsed
    assert parsed.action == "explain" and parsed.workspace_id == "ws-1"
    assert parsed.active_file is not None and parsed.active_file.cursor is not None
    assert parsed.active_file.cursor.character == 1
    assert parsed.diagnostics[0].end_line == 3
    assert parse_context(None) == parse_context("") == parse_context("null")


@pytest.mark.parametrize(("value", "message"), [
    ("{not json", "context must be a JSON object (or a string holding one)"),
    ([1], "context must be a JSON object, not a list"),
    ({"action": "refactor"}, "context.action must be one of explain, fix, improve, document, "
                             "tests, not 'refactor'"),
    ({"workspace_id": "a/b"}, "context.workspace_id must be 1-100 characters"),
    ({"activeFile": {"content": 3}}, "context.activeFile.content must be a string, not a number"),
    ({"activeFile": {"cursorPosition": {"line": -1, "character": 0}}},
     "context.activeFile.cursorPosition.line must be a non-negative integer, not -1"),
    ({"diagnostics": [{"startLine": 1}]}, "context.diagnostics[0].message is required"),
])
def test_context_errors_name_the_key(value: object, message: str) -> None:
    with pytest.raises(ContextError) as error:
        parse_context(value)
    assert str(error.value).startswith(message)


# -- over HTTP -------------------------------------------------------------------------------------


async def test_send_message_with_a_context_answers_and_keeps_history(
    client: httpx.AsyncClient,
) -> None:
    sid = await login(client)
    context = {"action": "fix", "activeFile": {"relativePath": "m.py",
                                               "content": "import os\nprint(1)\n"}}
    reply = await call(client, SEND, sid=sid, json={"message": "Fix this", "context": context,
                                                    "conversation_id": "fix-1"})
    message = reply.json()["message"]
    assert message["status"] == 200 and message["model"] == "reference-echo"
    assert code_blocks(message["content"]) == [("python", "print(1)")]
    # a form or query string carries the context as JSON text
    as_text = await call(client, AGENT, sid=sid,
                         data={"prompt": "Fix this", "context": json.dumps(context)})
    assert as_text.json()["message"]["content"] == message["content"]
    history = (await call(client, HISTORY, sid=sid, verb="GET",
                          params={"conversation_id": "fix-1"})).json()["message"]["messages"]
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "Fix this"), ("assistant", message["content"])]


async def test_a_bad_context_is_an_in_band_400(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    for method in (SEND, AGENT, STREAM):
        reply = await call(client, method, sid=sid, verb="GET",
                           params={"prompt": "hi", "context": '{"action": 3}'})
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("application/json")
        assert reply.json() == {"message": {"status": 400, "error": (
            "context.action must be one of explain, fix, improve, document, tests, not 3")}}


def sse_events(text: str) -> list[Any]:
    events = []
    for block in text.split("\n\n"):
        if block:
            assert block.startswith("data: ") and "\n" not in block, block
            payload = block[len("data: "):]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def test_chat_stream_sends_the_answer_as_server_sent_events(
    backend: RunningBackend, client: httpx.AsyncClient,
) -> None:
    sid = await login(client)
    params = {"message": "Explain", "conversation_id": "sse-1",
              "context": json.dumps({"activeFile": {"relativePath": "a.py", "content": MODULE}})}
    reply = await call(client, STREAM, sid=sid, verb="GET", params=params)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert reply.text.endswith("data: [DONE]\n\n")
    events = sse_events(reply.text)
    *deltas, final, done = events
    assert done == "[DONE]"
    assert len(deltas) >= 3 and all(
        set(d) == {"ts", "type", "say", "text", "partial", "content"} and d["type"] == "say"
        and d["say"] == "text" and d["partial"] is True and d["content"] == d["text"]
        for d in deltas)
    assert set(final) == {"ts", "type", "say", "text", "partial", "conversation_id", "model"}
    assert final["partial"] is False and final["conversation_id"] == "sse-1"
    assert final["model"] == "reference-echo"
    assert "".join(d["text"] for d in deltas) == final["text"]
    assert final["text"].startswith(f"{HEADER} a static reading of `a.py`")
    history = backend.store.get_chat_history(EMAIL, "sse-1")
    assert [(m.role, m.content) for m in history] == [("user", "Explain"),
                                                      ("assistant", final["text"])]
    # the same answer as send_message's
    same = await call(client, SEND, sid=sid, json=params)
    assert same.json()["message"]["content"] == final["text"]


async def test_chat_stream_refusals_are_json(client: httpx.AsyncClient) -> None:
    guest = await call(client, STREAM, verb="GET", params={"message": "hi"})
    assert guest.status_code == 403
    sid = await login(client)
    empty = await call(client, STREAM, sid=sid, verb="GET", params={"message": " "})
    assert empty.json() == {"message": {"status": 400, "error": "Prompt is required"}}


async def test_a_stream_whose_caller_leaves_stops_and_is_not_kept(
    backend: RunningBackend, client: httpx.AsyncClient,
) -> None:
    sid = await login(client)
    await backend.pace_chat(0)
    await backend.hold_chat(True)
    reader, writer = await asyncio.open_connection("127.0.0.1", backend.port)
    writer.write(f"GET /api/method/{STREAM}?message=going&conversation_id=left HTTP/1.1\r\n"
                 f"Host: 127.0.0.1\r\nCookie: sid={sid}\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert b"200 OK" in head and b"text/event-stream" in head  # headers before the answer
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.2)
    assert (await backend.hold_chat(False))["waiting"] == 1
    await asyncio.sleep(0.5)  # unpaced, a whole answer takes milliseconds
    assert backend.store.get_chat_history(EMAIL, "left") == []
    # the same request, kept open, is answered and remembered
    answered = await call(client, STREAM, sid=sid, verb="GET",
                          params={"message": "staying", "conversation_id": "stayed"})
    assert answered.text.endswith("data: [DONE]\n\n")
    assert len(backend.store.get_chat_history(EMAIL, "stayed")) == 2
