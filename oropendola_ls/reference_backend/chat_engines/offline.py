"""The offline engine: deterministic answers from static analysis and the workspace index.

It is what the reference backend answers with when no model is configured. It never pretends
to be a model: every answer's first line starts with `HEADER`. Answers are Markdown, depend
only on the request and the index (sorted, no timestamps), and are short.

=========  =====================================================================================
action     answer
=========  =====================================================================================
explain    Python: per function and class, what it takes, returns, calls and raises, and its
           docstring's first line; other languages: line count and the definitions found by
           pattern. Both: related files from the workspace index.
document   the code with a Google-style docstring skeleton in each function, in one ```python
           block shaped to replace the selection
fix        the code with the unused imports removed, in one ```python block, and what changed;
           says so when there is nothing it can fix
improve    one suggestion per static-check finding, with its line; a ```python block only when
           it rewrote mutable defaults
tests      a pytest file skeleton in one ```python block
(none)     the workspace index's best matches for the prompt, or an honest "connect a model";
           a question about running tests or installing may get one ```sh block
=========  =====================================================================================

A prompt starting with "Explain" is the explain action when the request carries code.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import PurePosixPath

from oropendola_ls.reference_backend import analysis
from oropendola_ls.reference_backend.chat_engines import code_edits
from oropendola_ls.reference_backend.chat_engines.base import (
    Action,
    ChatRequest,
    Diagnostic,
    text_deltas,
)
from oropendola_ls.reference_backend.chat_engines.code_facts import (
    ClassFacts,
    FunctionFacts,
    definitions,
    module_calls,
    parse_python,
    pattern_definitions,
    shorten,
)
from oropendola_ls.reference_backend.chat_engines.focus import (
    FocusCode,
    code_span,
    fence,
    focus_code,
    names_list,
    normalise,
    quote,
    snippet_language,
)
from oropendola_ls.reference_backend.search_index import SearchHit, query_terms
from oropendola_ls.reference_backend.source_text import language_for_path

OFFLINE_MODEL = "reference-echo"
"""The model name offline answers report (kept from the echo days: clients and tests know it)."""
HEADER = "Offline reference engine (no AI model connected):"
CONNECT_HINT = (
    "Connect a model for real answers: `oropendola-ls backend --llm-base-url URL "
    "--llm-model NAME` (any OpenAI-compatible server: Ollama, llama.cpp, vLLM)."
)
MAX_SECTIONS = 40
MAX_SUGGESTIONS = 20
MAX_HITS = 5
MAX_RELATED = 5
MAX_NOT_FIXED = 10
_STOP_WORDS = frozenset({
    "a", "about", "an", "and", "any", "are", "as", "at", "be", "by", "can", "could", "did", "do",
    "does", "for", "from", "get", "has", "have", "how", "i", "if", "in", "into", "is", "it",
    "its", "me", "my", "of", "on", "or", "please", "should", "so", "some", "tell", "than", "that",
    "the", "their", "them", "then", "there", "these", "this", "to", "us", "was", "we", "what",
    "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
})
_TEST_QUESTION = re.compile(r"\b(?:run|running|execute|launch)\b.*\btests?\b|\btest\s+suite\b"
                            r"|\bhow\b.*\btest\b", re.IGNORECASE | re.DOTALL)
_INSTALL_QUESTION = re.compile(r"\binstall(?:ing)?\b|\bset\s*up\b|\bdependencies\b",
                               re.IGNORECASE)
_COMMANDS: dict[str, tuple[str, str]] = {
    "python": ("pytest -q", "python -m pip install -e ."),
    "javascript": ("npm test", "npm install"),
    "javascriptreact": ("npm test", "npm install"),
    "typescript": ("npm test", "npm install"),
    "typescriptreact": ("npm test", "npm install"),
    "rust": ("cargo test", "cargo build"),
    "go": ("go test ./...", "go mod download"),
}
"""Language → (the command that runs the tests, the one that installs the project)."""


class OfflineEngine:
    """Answers without a model; the whole answer is ready at once and streamed in deltas."""

    @property
    def model(self) -> str:
        return OFFLINE_MODEL

    @property
    def paced(self) -> bool:
        return True

    async def answer(self, request: ChatRequest) -> AsyncIterator[str]:
        text = await asyncio.to_thread(compose_answer, request)
        for piece in text_deltas(text):
            yield piece


def compose_answer(request: ChatRequest) -> str:
    """The offline answer to ``request`` (blocking: it may parse code and query the index)."""
    focus = focus_code(request.context)
    action = request.context.action
    if action is None and focus is not None and \
            request.prompt.lstrip().lower().startswith("explain"):
        action = "explain"
    if action is None:
        return plain_chat(request, focus)
    if focus is None:
        return no_code(action)
    return _ACTIONS[action](request, focus)


def no_code(action: Action) -> str:
    verb = {"explain": "explain", "fix": "fix", "improve": "improve", "document": "document",
            "tests": "write tests for"}[action]
    return (f"{HEADER} there is no code to {verb}: the request carries no selection and no "
            "file content (`context.activeFile.selectedText` or `content`).")


def _described(focus: FocusCode) -> str:
    lines = focus.line_count
    language = focus.language or "unknown language"
    return f"{focus.where} ({language}, {lines} line{'s' if lines != 1 else ''})"


def _syntax_problem(focus: FocusCode, error: SyntaxError) -> str:
    line = f", {focus.line_label(error.lineno)}" if error.lineno else ""
    return f"it does not parse as Python ({error.msg}{line})"


# -- explain -------------------------------------------------------------------------------------


def _returns_text(facts: FunctionFacts) -> str:
    if facts.is_generator:
        if facts.returns:
            return f"yields {code_span(facts.returns)}"
        return "yields values (a generator)"
    kinds = ", ".join(facts.return_kinds)
    if facts.returns is not None:
        return code_span(facts.returns) + (f" ({kinds})" if kinds else "")
    return kinds if kinds else "nothing (no `return` with a value)"


def _function_section(facts: FunctionFacts, focus: FocusCode, owner: str | None) -> list[str]:
    role = f", method of {code_span(owner)}" if owner else ", method" if facts.is_method else ""
    lines = [f"### {code_span(facts.signature)} ({focus.line_label(facts.line)}{role})"]
    if facts.summary:
        lines.append(shorten(facts.summary, 200))
    takes = ", ".join(code_span(p.render()) for p in facts.parameters) or "nothing"
    lines += [
        f"- **Takes:** {takes}",
        f"- **Returns:** {_returns_text(facts)}",
        f"- **Calls:** {names_list(list(facts.calls)) if facts.calls else 'nothing'}",
        f"- **Raises:** {names_list(list(facts.raises)) if facts.raises else 'nothing explicitly'}",
    ]
    return lines


def _class_section(facts: ClassFacts, focus: FocusCode) -> list[str]:
    bases = f"({', '.join(facts.bases)})" if facts.bases else ""
    lines = [f"### {code_span(f'class {facts.name}{bases}')} ({focus.line_label(facts.line)})"]
    if facts.summary:
        lines.append(shorten(facts.summary, 200))
    methods = [m.name for m in facts.methods]
    lines.append(f"- **Methods:** {names_list(methods, 20) if methods else 'none'}")
    return lines


def _related_files(request: ChatRequest, focus: FocusCode, names: Sequence[str]) -> list[str]:
    if request.workspace is None or not names:
        return []
    query = " ".join(dict.fromkeys(names))
    hits = request.workspace.search(query, 4 * MAX_RELATED)
    seen: dict[str, SearchHit] = {}
    for hit in hits:
        if hit.path != focus.path and hit.path not in seen:
            seen[hit.path] = hit
    shown = list(seen.values())[:MAX_RELATED]
    if not shown:
        return ["", "No related files in the workspace index."]
    lines = ["", "**Related files in the workspace index:**"]
    for hit in shown:
        first = next((line.strip() for line in hit.snippet.split("\n") if line.strip()), "")
        lines.append(f"- {code_span(f'{hit.path}:{hit.start_line}')}: "
                     f"{code_span(shorten(first, 80))}")
    return lines


def explain(request: ChatRequest, focus: FocusCode) -> str:
    head = f"{HEADER} a static reading of {_described(focus)}, not an AI explanation."
    lines = [head, ""]
    names: list[str] = []
    tree = parse_python(focus.text) if focus.is_python else None
    if isinstance(tree, SyntaxError):
        lines += [f"Read by pattern: {_syntax_problem(focus, tree)}.", ""]
    if tree is not None and not isinstance(tree, SyntaxError):
        found = definitions(tree)
        sections = 0
        for item in found:
            if sections >= MAX_SECTIONS:
                break
            names.append(item.name)
            if isinstance(item, ClassFacts):
                parts = [_class_section(item, focus)]
                parts += [_function_section(m, focus, item.name) for m in item.methods]
            else:
                parts = [_function_section(item, focus, None)]
            for part in parts[: MAX_SECTIONS - sections]:
                lines += [*part, ""]
                sections += 1
        total = sum(1 + (len(i.methods) if isinstance(i, ClassFacts) else 0) for i in found)
        if total > sections:
            lines += [f"… and {total - sections} more definitions.", ""]
        calls = module_calls(tree)
        if not found:
            lines.append("No function or class definitions."
                         + (f" The code calls {names_list(calls)}." if calls else ""))
        elif calls:
            lines.append(f"Module-level code calls {names_list(calls)}.")
    else:
        language = "python" if focus.is_python else focus.language
        found_by_pattern = pattern_definitions(focus.text, language)
        names = [d.name for d in found_by_pattern]
        if found_by_pattern:
            lines.append("**Definitions** (recognised by pattern, not parsed):")
            for found_def in found_by_pattern[:MAX_SECTIONS]:
                lines.append(f"- {focus.line_label(found_def.line)}: {found_def.kind} "
                             f"{code_span(found_def.name)}")
            if len(found_by_pattern) > MAX_SECTIONS:
                lines.append(f"- … and {len(found_by_pattern) - MAX_SECTIONS} more")
        else:
            lines.append("No definitions recognised.")
    lines += _related_files(request, focus, names)
    return "\n".join(lines).rstrip() + "\n"


# -- document ------------------------------------------------------------------------------------


def document(request: ChatRequest, focus: FocusCode) -> str:
    if not focus.is_python:
        return (f"{HEADER} docstring skeletons are written for Python only; "
                f"{_described(focus)} is not Python.")
    tree = parse_python(focus.text)
    if isinstance(tree, SyntaxError):
        return f"{HEADER} no docstrings added to {focus.where}: {_syntax_problem(focus, tree)}."
    outcome = code_edits.add_docstrings(focus.text, tree)
    notes: list[str] = []
    if outcome.already:
        notes.append(f"Already documented: {names_list(list(outcome.already))}.")
    if outcome.skipped:
        notes.append(f"Left alone (the body is on the `def` line): "
                     f"{names_list(list(outcome.skipped))}.")
    if not outcome.documented:
        reason = ("every function already has a docstring" if outcome.already or outcome.skipped
                  else "it defines no function")
        return "\n\n".join([f"{HEADER} nothing to document in {focus.where}: {reason}.", *notes])
    if not code_edits.reparses(outcome.code):
        return f"{HEADER} no docstrings added to {focus.where}: the result would not parse."
    head = (f"{HEADER} docstring skeletons (Google style) for "
            f"{names_list(list(outcome.documented))} in {focus.where}; replace each TODO.")
    return "\n\n".join([head, fence(focus.replacement(outcome.code), "python"), *notes]) + "\n"


# -- fix -----------------------------------------------------------------------------------------


def _is_unused_import(diagnostic: Diagnostic) -> bool:
    if diagnostic.rule is not None:
        return diagnostic.rule == "unused-import"
    message = diagnostic.message.lower()
    return "import" in message and ("never used" in message or "unused" in message)


def _not_fixed(request: ChatRequest, focus: FocusCode, skip_rule: str) -> list[str]:
    """What the request's diagnostics (or the static checks) report that was not fixed."""
    entries: list[tuple[int, str]] = []
    if request.context.diagnostics:
        for diagnostic in request.context.diagnostics:
            if skip_rule == "unused-import" and _is_unused_import(diagnostic):
                continue
            rule = f" ({diagnostic.rule})" if diagnostic.rule else ""
            entries.append((diagnostic.start_line,
                            f"line {diagnostic.start_line}: {diagnostic.message}{rule}"))
    else:
        for finding in analysis.analyze(focus.path, focus.text, focus.language):
            if finding.rule != skip_rule:
                entries.append((finding.start_line, f"{focus.line_label(finding.start_line)}: "
                                f"{finding.message} ({finding.rule})"))
    entries.sort()
    shown = [f"- {text}" for _line, text in entries[:MAX_NOT_FIXED]]
    if len(entries) > MAX_NOT_FIXED:
        shown.append(f"- … and {len(entries) - MAX_NOT_FIXED} more")
    return shown


def fix(request: ChatRequest, focus: FocusCode) -> str:
    not_fixed = _not_fixed(request, focus, "unused-import")
    tail = (["", "Not fixed (the offline engine only removes unused imports):", *not_fixed]
            if not_fixed else [])
    if not focus.is_python:
        head = (f"{HEADER} nothing I can fix in {_described(focus)}: the offline engine fixes "
                "Python only (it removes unused imports).")
        return "\n".join([head, *tail]) + "\n"
    tree = parse_python(focus.text)
    if isinstance(tree, SyntaxError):
        head = (f"{HEADER} nothing I can fix safely in {focus.where}: "
                f"{_syntax_problem(focus, tree)}.")
        return "\n".join([head, *tail]) + "\n"
    places = code_edits.unused_import_names(focus.text, tree, focus.path)
    allowed: set[str] | None = None
    content = request.context.active_file.content if request.context.active_file else None
    if focus.kind == "selection" and content:
        whole = normalise(content)
        whole_tree = parse_python(whole)
        if not isinstance(whole_tree, SyntaxError):
            # an import unused in the selection may be used elsewhere in the file
            allowed = set(code_edits.unused_import_names(whole, whole_tree, focus.path).values())
    outcome = code_edits.remove_unused_imports(focus.text, tree, allowed, places)
    notes: list[str] = []
    if outcome.left_alone:
        shared = [f"{code_span(name)} ({focus.line_label(line)})"
                  for line, name in outcome.left_alone]
        notes = ["", f"Left alone (the import shares its line with other statements): "
                     f"{', '.join(shared)}."]
    if not outcome.changes:
        head = (f"{HEADER} nothing I can fix in {focus.where}: the offline engine only removes "
                "unused imports, and the static checks found none to remove.")
        return "\n".join([head, *notes, *tail]) + "\n"
    if not code_edits.reparses(outcome.code):
        return f"{HEADER} nothing fixed in {focus.where}: the result would not parse.\n"
    removed = sum(len(change.removed) for change in outcome.changes)
    head = (f"{HEADER} removed {removed} unused import{'s' if removed != 1 else ''} from "
            f"{focus.where}.")
    changes = []
    for change in outcome.changes:
        where = focus.line_label(change.line)
        if change.after is None:
            changes.append(f"- {where}: removed {code_span(change.before)}")
        else:
            changes.append(f"- {where}: {code_span(change.before)} → {code_span(change.after)}")
    block = fence(focus.replacement(outcome.code), "python")
    return "\n".join([head, "", *changes, "", block, *notes, *tail]) + "\n"


# -- improve -------------------------------------------------------------------------------------

_ADVICE = {
    "unused-import": "remove it",
    "unused-variable": "remove the assignment, or use the value",
    "line-too-long": "wrap it",
    "mixed-indentation": "indent with spaces only",
    "conflict-marker": "resolve the merge conflict",
}


def improve(request: ChatRequest, focus: FocusCode) -> str:
    findings = analysis.analyze(focus.path, focus.text, focus.language)
    rewrite: code_edits.DefaultsOutcome | None = None
    if focus.is_python:
        tree = parse_python(focus.text)
        if not isinstance(tree, SyntaxError):
            rewrite = code_edits.fix_mutable_defaults(focus.text, tree)
            if not rewrite.changes or not code_edits.reparses(rewrite.code):
                rewrite = None
    rewritten = {(c.line, c.parameter) for c in rewrite.changes} if rewrite else set()
    suggestions: list[str] = []
    trailing = [f for f in findings if f.rule == "trailing-whitespace"]
    for finding in findings:
        if finding.rule == "trailing-whitespace":
            continue
        advice = _ADVICE.get(finding.rule)
        text = finding.message + (f"; {advice}" if advice else "")
        if finding.rule == "mutable-default":
            name = re.match(r"parameter '([^']+)'", finding.message)
            if name and (finding.start_line, name.group(1)) in rewritten:
                text += " (rewritten below)"
        suggestions.append(f"{focus.line_label(finding.start_line)}: {text}.")
    if trailing:
        suggestions.append(
            f"{focus.line_label(trailing[0].start_line)}: trailing whitespace on "
            f"{len(trailing)} line{'s' if len(trailing) != 1 else ''}; strip it.")
    if not suggestions:
        return (f"{HEADER} no suggestions for {_described(focus)}: the static checks (unused "
                "imports and variables, bare `except:`, mutable defaults, complexity over "
                f"{analysis.MAX_COMPLEXITY}, lines over {analysis.MAX_LINE_LENGTH} characters, "
                "whitespace) found nothing.\n")
    head = f"{HEADER} {len(suggestions)} suggestion{'s' if len(suggestions) != 1 else ''} " \
           f"from static checks of {_described(focus)}."
    lines = [head, ""]
    lines += [f"{n}. {text}" for n, text in enumerate(suggestions[:MAX_SUGGESTIONS], 1)]
    if len(suggestions) > MAX_SUGGESTIONS:
        lines.append(f"… and {len(suggestions) - MAX_SUGGESTIONS} more.")
    if rewrite is not None:
        lines += ["", "The code with the mutable defaults replaced by `None` (the only change; "
                      "annotations become `X | None`, Python 3.10+):", "",
                  fence(focus.replacement(rewrite.code), "python")]
    return "\n".join(lines) + "\n"


# -- tests ---------------------------------------------------------------------------------------


def tests(request: ChatRequest, focus: FocusCode) -> str:
    if not focus.is_python:
        return (f"{HEADER} test skeletons are written for Python (pytest) only; "
                f"{_described(focus)} is not Python.")
    tree = parse_python(focus.text)
    if isinstance(tree, SyntaxError):
        return f"{HEADER} no test skeleton for {focus.where}: {_syntax_problem(focus, tree)}."
    module = code_edits.module_name(focus.path)
    outcome = code_edits.make_test_file(tree, module)
    methods = (f"Not covered (they look like methods: test them through their class): "
               f"{names_list(list(outcome.methods))}.") if outcome.methods else ""
    if not outcome.functions:
        return "\n\n".join(filter(None, [
            f"{HEADER} no public module-level function in {focus.where} to write tests for.",
            methods]))
    stem = module.rsplit(".", 1)[-1] if module else "module"
    where = (f"from {code_span(module)}" if module
             else "(no module path was given: fix the import)")
    head = (f"{HEADER} a pytest skeleton for {names_list(list(outcome.functions))} {where}; "
            f"save it as {code_span(f'tests/test_{stem}.py')} and replace each TODO.")
    return "\n\n".join(filter(None, [head, fence(outcome.code, "python"), methods])) + "\n"


_ACTIONS: dict[Action, Callable[[ChatRequest, FocusCode], str]] = {
    "explain": explain,
    "document": document,
    "fix": fix,
    "improve": improve,
    "tests": tests,
}


# -- plain chat ----------------------------------------------------------------------------------


def search_words(prompt: str) -> list[str]:
    """The prompt's words worth searching for (no stop words, no single characters)."""
    words = [w for w in re.findall(r"\w+", prompt) if len(w) > 1 and w.lower() not in _STOP_WORDS]
    return list(dict.fromkeys(words))[:16]


def _project_language(request: ChatRequest, focus: FocusCode | None) -> str | None:
    if focus is not None and focus.language:
        return focus.language.lower()
    if request.workspace is not None:
        counts = Counter(request.workspace.languages())
        for language, _count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            if language in _COMMANDS:
                return language
    return None


def _shell_suggestion(request: ChatRequest, focus: FocusCode | None) -> list[str]:
    wants_tests = bool(_TEST_QUESTION.search(request.prompt))
    wants_install = not wants_tests and bool(_INSTALL_QUESTION.search(request.prompt))
    if not (wants_tests or wants_install):
        return []
    what = "run the tests" if wants_tests else "install the project"
    commands = _COMMANDS.get(_project_language(request, focus) or "")
    if commands is None:
        choices = ", ".join(
            f"{code_span(cmd[0] if wants_tests else cmd[1])} ({lang})"
            for lang, cmd in (("Python", _COMMANDS["python"]),
                              ("JavaScript", _COMMANDS["javascript"]),
                              ("Rust", _COMMANDS["rust"]), ("Go", _COMMANDS["go"]))
        )
        return ["", f"To {what}, the usual command depends on the project: {choices}."]
    command = commands[0] if wants_tests else commands[1]
    return ["", f"To {what} (your editor asks before it runs anything):", "",
            fence(command, "sh")]


def _hit_language(hit: SearchHit) -> str:
    return snippet_language(language_for_path(hit.path) or PurePosixPath(hit.path).suffix[1:])


def plain_chat(request: ChatRequest, focus: FocusCode | None) -> str:
    lines = [f"{HEADER} this is the Oropendola reference backend; it answers from your "
             "workspace index, not from a model.", "", quote(request.prompt), ""]
    words = search_words(request.prompt)
    lookup = request.workspace
    hits = lookup.search(" ".join(words), MAX_HITS) if lookup is not None and words else []
    if hits:
        shown_terms = [t for t in query_terms(" ".join(words))][:8]
        lines.append(f"Best matches in your workspace index for {names_list(shown_terms, 8)}:")
        for number, hit in enumerate(hits, 1):
            span = (f"{hit.start_line}" if hit.start_line == hit.end_line
                    else f"{hit.start_line}-{hit.end_line}")
            workspace = f" (workspace {code_span(hit.workspace_id)})"
            lines += ["", f"**{number}. {code_span(f'{hit.path}:{span}')}**{workspace}",
                      fence(hit.snippet, _hit_language(hit))]
    elif lookup is not None and not lookup.languages():
        lines.append("I am the offline engine: your workspace is not indexed yet (the "
                     "`oropendola.indexWorkspace` command sends it), and I cannot answer general "
                     f"questions. {CONNECT_HINT}")
    else:
        lines.append("I am the offline engine: nothing in your workspace index matches, and I "
                     f"cannot answer general questions. {CONNECT_HINT}")
    lines += _shell_suggestion(request, focus)
    return "\n".join(lines) + "\n"
