"""Rewrites of Python source the offline engine can make safely, each checked by reparsing.

- `add_docstrings`: a Google-style docstring skeleton in each function that has none;
- `remove_unused_imports`: the imports `analysis.analyze` reports as unused taken out of their
  statements (a statement left with no names is deleted, or becomes ``pass`` when it was the
  only statement of its block);
- `fix_mutable_defaults`: ``def f(x=[])`` becomes ``def f(x=None)`` with
  ``if x is None: x = []`` at the top of the body;
- `make_test_file`: a pytest file for the module's public functions.

Edits are made on the text (not by unparsing), so comments and formatting elsewhere are kept.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from oropendola_ls.reference_backend import analysis
from oropendola_ls.reference_backend.chat_engines.code_facts import (
    FunctionFacts,
    all_functions,
    function_facts,
    looks_like_method,
    parse_python,
    shorten,
)

_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_MUTABLE_CALLS = frozenset({"list", "dict", "set"})
_WRAP_COLUMN = 88


@dataclass(frozen=True, slots=True)
class Edit:
    start: int
    end: int
    text: str


class Positions:
    """Offsets into ``source`` from `ast` positions (1-based lines, UTF-8 byte columns)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.split("\n")
        self.starts: list[int] = []
        offset = 0
        for line in self.lines:
            self.starts.append(offset)
            offset += len(line) + 1

    def column(self, line: int, byte_column: int) -> int:
        text = self.lines[line - 1]
        return len(text.encode()[:byte_column].decode(errors="ignore"))

    def offset(self, line: int, byte_column: int) -> int:
        return self.starts[line - 1] + self.column(line, byte_column)

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]

    def line_start(self, line: int) -> int:
        return self.starts[line - 1]

    def after_line(self, line: int) -> int:
        """The offset just past ``line``'s line break (the end of the text on the last line)."""
        return min(len(self.source), self.starts[line - 1] + len(self.lines[line - 1]) + 1)

    def indentation(self, line: int) -> str:
        text = self.lines[line - 1]
        return text[: len(text) - len(text.lstrip(" \t"))]

    def alone_from(self, node: ast.AST) -> bool:
        """Whether only indentation precedes ``node`` on its first line."""
        text = self.lines[node.lineno - 1]  # type: ignore[attr-defined]
        return not text[: self.column(node.lineno, node.col_offset)].strip()  # type: ignore[attr-defined]

    def alone_until(self, node: ast.AST) -> bool:
        """Whether only spaces or a comment follow ``node`` on its last line."""
        line: int = node.end_lineno  # type: ignore[attr-defined]
        rest = self.lines[line - 1][self.column(line, node.end_col_offset):]  # type: ignore[attr-defined]
        return not rest.strip() or rest.lstrip().startswith("#")


def apply_edits(source: str, edits: Iterable[Edit]) -> str:
    """``source`` with non-overlapping ``edits`` made (insertions at one place keep their order)."""
    ordered = sorted(enumerate(edits), key=lambda item: (item[1].start, item[0]), reverse=True)
    text = source
    for _index, edit in ordered:
        text = text[: edit.start] + edit.text + text[edit.end:]
    return text


def _indent_unit(indentation: str) -> str:
    return "\t" if "\t" in indentation else "    "


def _body_is_on_its_own_lines(function: _FunctionNode, positions: Positions) -> bool:
    return positions.alone_from(function.body[0])


# -- docstrings ----------------------------------------------------------------------------------


def _escape_docstring(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def docstring_skeleton(facts: FunctionFacts) -> list[str]:
    """The lines of a Google-style docstring for ``facts`` (unindented, quotes included)."""
    esc = _escape_docstring
    lines = [f'"""TODO: Summarize what {facts.name} does.']
    params = list(facts.parameters)
    if params:
        lines += ["", "Args:"]
        for param in params:
            kind = ""
            if param.annotation and not param.variadic:
                optional = ", optional" if param.default is not None else ""
                kind = f" ({esc(param.annotation)}{optional})"
            text = f"    {param.name}{kind}: TODO: describe {param.bare_name}."
            if param.default is not None:
                text += f" Defaults to {esc(param.default)}."
            lines.append(text)
    if facts.is_generator:
        shown = f"{esc(facts.returns)}: " if facts.returns else ""
        lines += ["", "Yields:", f"    {shown}TODO: describe each item."]
    elif facts.returns_value:
        shown = f"{esc(facts.returns)}: " if facts.returns else ""
        lines += ["", "Returns:", f"    {shown}TODO: describe the result."]
    if facts.raises:
        lines += ["", "Raises:"]
        lines += [f"    {name}: TODO: say when." for name in facts.raises]
    if len(lines) == 1:
        return [lines[0] + '"""']
    return [*lines, '"""']


@dataclass(frozen=True, slots=True)
class DocumentOutcome:
    code: str
    documented: tuple[str, ...]
    already: tuple[str, ...]
    skipped: tuple[str, ...]
    """Functions left alone because their body is on the ``def`` line."""


def add_docstrings(code: str, tree: ast.Module) -> DocumentOutcome:
    positions = Positions(code)
    edits: list[Edit] = []
    documented: list[tuple[int, str]] = []
    already: list[tuple[int, str]] = []
    skipped: list[tuple[int, str]] = []
    for function, owner in all_functions(tree):
        facts = function_facts(function, owner)
        where = (function.lineno, facts.qualified_name)
        if facts.docstring is not None:
            already.append(where)
            continue
        if not _body_is_on_its_own_lines(function, positions):
            skipped.append(where)
            continue
        indentation = positions.indentation(function.body[0].lineno)
        text = "".join(f"{indentation}{line}\n" if line else "\n"
                       for line in docstring_skeleton(facts))
        edits.append(Edit(positions.line_start(function.body[0].lineno),
                          positions.line_start(function.body[0].lineno), text))
        documented.append(where)
    new_code = apply_edits(code, edits)
    return DocumentOutcome(
        new_code,
        tuple(name for _line, name in sorted(documented)),
        tuple(name for _line, name in sorted(already)),
        tuple(name for _line, name in sorted(skipped)),
    )


# -- unused imports ------------------------------------------------------------------------------


def _bound_name(alias: ast.alias, statement: ast.Import | ast.ImportFrom) -> str:
    if alias.asname:
        return alias.asname
    return alias.name.split(".", 1)[0] if isinstance(statement, ast.Import) else alias.name


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    return sorted((n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)),
                  key=lambda n: (n.lineno, n.col_offset))


def unused_import_names(code: str, tree: ast.AST, path: str | None) -> dict[tuple[int, int], str]:
    """(line, code-point column) of each alias `analysis.analyze` reports unused → bound name."""
    reported = {
        (f.start_line, f.start_column)
        for f in analysis.analyze(path, code, "python") if f.rule == "unused-import"
    }
    positions = Positions(code)
    found: dict[tuple[int, int], str] = {}
    for statement in _imports(tree):
        for alias in statement.names:
            place = (alias.lineno, positions.column(alias.lineno, alias.col_offset))
            if place in reported:
                found[place] = _bound_name(alias, statement)
    return found


def _alias_text(alias: ast.alias) -> str:
    return alias.name + (f" as {alias.asname}" if alias.asname else "")


def _import_text(statement: ast.Import | ast.ImportFrom, kept: Sequence[ast.alias],
                 indentation: str, multiline: bool) -> str:
    names = [_alias_text(alias) for alias in kept]
    if isinstance(statement, ast.Import):
        return "import " + ", ".join(names)
    source = "." * statement.level + (statement.module or "")
    one_line = f"from {source} import {', '.join(names)}"
    if not multiline or len(indentation) + len(one_line) <= _WRAP_COLUMN:
        return one_line
    unit = _indent_unit(indentation)
    inner = "".join(f"{indentation}{unit}{name},\n" for name in names)
    return f"from {source} import (\n{inner}{indentation})"


def _block_of(tree: ast.AST) -> dict[int, list[ast.stmt]]:
    """id(statement) → the statement list (block) holding it.

    The module's own body is left out: unlike a function's, it may end up empty.
    """
    blocks: dict[int, list[ast.stmt]] = {}
    for node in ast.walk(tree):
        for field in () if isinstance(node, ast.Module) else ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                for statement in block:
                    if isinstance(statement, ast.stmt):
                        blocks[id(statement)] = block
        if isinstance(node, ast.Try | ast.TryStar):
            for handler in node.handlers:
                for statement in handler.body:
                    blocks[id(statement)] = handler.body
        if isinstance(node, ast.Match):
            for case in node.cases:
                for statement in case.body:
                    blocks[id(statement)] = case.body
    return blocks


@dataclass(frozen=True, slots=True)
class ImportChange:
    line: int
    before: str
    after: str | None
    """None when the statement was deleted."""
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    code: str
    changes: tuple[ImportChange, ...]
    left_alone: tuple[tuple[int, str], ...]
    """(line, bound name) of unused imports on a line shared with other statements."""


def remove_unused_imports(code: str, tree: ast.Module, unused: Iterable[str] | None,
                          places: dict[tuple[int, int], str]) -> ImportOutcome:
    """Take the aliases at ``places`` out of their import statements.

    ``unused``, when given, narrows them to these bound names (the ones also unused in the rest
    of the file, when ``code`` is a selection of it).
    """
    allowed = None if unused is None else set(unused)
    positions = Positions(code)
    blocks = _block_of(tree)
    edits: list[Edit] = []
    changes: list[ImportChange] = []
    left_alone: list[tuple[int, str]] = []
    emptied: dict[int, list[ast.stmt]] = {}
    plans: list[tuple[ast.Import | ast.ImportFrom, list[ast.alias], list[str]]] = []
    for statement in _imports(tree):
        drop: list[str] = []
        kept: list[ast.alias] = []
        for alias in statement.names:
            place = (alias.lineno, positions.column(alias.lineno, alias.col_offset))
            name = places.get(place)
            if name is not None and (allowed is None or name in allowed):
                drop.append(name)
            else:
                kept.append(alias)
        if not drop:
            continue
        if not (positions.alone_from(statement) and positions.alone_until(statement)):
            left_alone.extend((statement.lineno, name) for name in drop)
            continue
        plans.append((statement, kept, drop))
        if not kept:
            block = blocks.get(id(statement))
            if block is not None:
                emptied.setdefault(id(block), block)
    deleted = {id(statement) for statement, kept, _drop in plans if not kept}
    needs_pass = {
        id(block[0]) for block in emptied.values()
        if all(id(statement) in deleted for statement in block)
    }
    for statement, kept, drop in plans:
        before = shorten(positions.source[positions.start(statement):positions.end(statement)],
                         100)
        indentation = positions.indentation(statement.lineno)
        if kept:
            multiline = statement.end_lineno != statement.lineno
            after = _import_text(statement, kept, indentation, multiline)
            edits.append(Edit(positions.start(statement), positions.end(statement), after))
            changes.append(ImportChange(statement.lineno, before, shorten(after, 100),
                                        tuple(drop)))
        elif id(statement) in needs_pass:
            edits.append(Edit(positions.start(statement), positions.end(statement), "pass"))
            changes.append(ImportChange(statement.lineno, before, "pass", tuple(drop)))
        else:
            start = positions.line_start(statement.lineno)
            end = positions.after_line(statement.end_lineno or statement.lineno)
            edits.append(Edit(start, end, ""))
            changes.append(ImportChange(statement.lineno, before, None, tuple(drop)))
    new_code = apply_edits(code, edits)
    return ImportOutcome(new_code, tuple(changes), tuple(left_alone))


# -- mutable defaults ----------------------------------------------------------------------------


def _optional_annotation(annotation: ast.expr, text: str) -> str | None:
    """``text`` widened to admit None, or None when it already does."""
    if re.search(r"\b(None|Optional|Any)\b", text):
        return None
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        quote = text[0] if text[:1] in ("'", '"') else '"'
        return f"{quote}{annotation.value} | None{quote}"
    return f"{text} | None"


@dataclass(frozen=True, slots=True)
class DefaultChange:
    line: int
    function: str
    parameter: str
    kind: str


@dataclass(frozen=True, slots=True)
class DefaultsOutcome:
    code: str
    changes: tuple[DefaultChange, ...]
    skipped: tuple[DefaultChange, ...]


def fix_mutable_defaults(code: str, tree: ast.Module) -> DefaultsOutcome:
    positions = Positions(code)
    edits: list[Edit] = []
    changes: list[DefaultChange] = []
    skipped: list[DefaultChange] = []
    for function, owner in sorted(all_functions(tree), key=lambda item: item[0].lineno):
        args = function.args
        positional = [*args.posonlyargs, *args.args]
        pairs = [
            *zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True),
            *((a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
              if d is not None),
        ]
        name = f"{owner}.{function.name}" if owner else function.name
        found = [(arg, default, kind) for arg, default in pairs
                 if (kind := analysis.mutable_default_kind(default)) is not None]
        if not found:
            continue
        if not _body_is_on_its_own_lines(function, positions):
            skipped.extend(DefaultChange(default.lineno, name, arg.arg, kind)
                           for arg, default, kind in found)
            continue
        body = function.body
        first = body[0]
        has_docstring = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                         and isinstance(first.value.value, str))
        indentation = positions.indentation(first.lineno)
        unit = _indent_unit(indentation)
        guard = ""
        for arg, default, kind in found:
            value = positions.source[positions.start(default):positions.end(default)]
            guard += (f"{indentation}if {arg.arg} is None:\n"
                      f"{indentation}{unit}{arg.arg} = {value}\n")
            edits.append(Edit(positions.start(default), positions.end(default), "None"))
            if arg.annotation is not None:
                text = positions.source[positions.start(arg.annotation):
                                        positions.end(arg.annotation)]
                widened = _optional_annotation(arg.annotation, text)
                if widened is not None:
                    edits.append(Edit(positions.start(arg.annotation),
                                      positions.end(arg.annotation), widened))
            changes.append(DefaultChange(default.lineno, name, arg.arg, kind))
        if has_docstring and positions.alone_until(first):
            at = positions.after_line(first.end_lineno or first.lineno)
            if at == len(positions.source) and not positions.source.endswith("\n"):
                guard = "\n" + guard.rstrip("\n")
        else:
            at = positions.line_start(first.lineno)
        edits.append(Edit(at, at, guard))
    return DefaultsOutcome(apply_edits(code, edits), tuple(changes), tuple(skipped))


# -- test skeletons ------------------------------------------------------------------------------


def module_name(path: str | None) -> str | None:
    """The import name of a ``.py`` file from its workspace-relative path (``src/`` dropped)."""
    if not path:
        return None
    parts = list(PurePosixPath(path.replace("\\", "/")).parts)
    if not parts or not parts[-1].endswith(".py"):
        return None
    parts[-1] = parts[-1][:-3]
    if parts[-1] == "__init__":
        parts.pop()
    if len(parts) > 1 and parts[0] == "src":
        parts.pop(0)
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.rsplit(".", 1)[-1]).lower()


@dataclass(frozen=True, slots=True)
class SkeletonOutcome:
    code: str
    functions: tuple[str, ...]
    methods: tuple[str, ...]
    """Functions that look like methods (first parameter ``self``): not covered."""


def _call_arguments(facts: FunctionFacts) -> tuple[list[str], str]:
    """(the lines that set the arguments, the argument list) of a call using the defaults."""
    setup: list[str] = []
    arguments: list[str] = []
    for param in facts.parameters:
        if param.variadic or param.default is not None:
            continue
        hint = f"a {param.annotation}" if param.annotation else "a value"
        setup.append(f"    {param.name} = ...  # TODO: {hint}")
        arguments.append(f"{param.name}={param.name}" if param.keyword_only else param.name)
    return setup, ", ".join(arguments)


def make_test_file(tree: ast.Module, module: str | None) -> SkeletonOutcome:
    """A pytest file with ``test_<name>`` for each public module-level function of ``tree``."""
    functions: list[FunctionFacts] = []
    methods: list[str] = []
    seen: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name.startswith("_") or node.name in seen:
            continue
        seen.add(node.name)
        if looks_like_method(node):
            methods.append(node.name)
            continue
        functions.append(function_facts(node, None))
    needs_asyncio = any(f.is_async for f in functions)
    needs_pytest = any(f.raises for f in functions)
    names = ", ".join(f.name for f in functions)
    header = [f'"""Tests for {module or "the module under test"}."""', ""]
    lines = list(header)
    for name, wanted in (("asyncio", needs_asyncio), ("pytest", needs_pytest)):
        if wanted:  # one block each: the standard library, then third parties
            lines += [f"import {name}", ""]
    if module:
        lines.append(f"from {module} import {names}")
    else:
        lines.append(f"from module_under_test import {names}  # TODO: the module's import name")
    for facts in functions:
        setup, arguments = _call_arguments(facts)
        call = f"{facts.name}({arguments})"
        if facts.is_async:
            call = f"asyncio.run({call})"
        lines += ["", "", f"def test_{facts.name}() -> None:", *setup]
        if facts.returns_value or facts.is_generator:
            shown = facts.returns or "value"
            result = f"list({call})" if facts.is_generator and not facts.is_async else call
            lines += [f"    result = {result}",
                      f"    assert result == ...  # TODO: the expected {shown}"]
        else:
            lines += [f"    {call}", "    # TODO: check what the call changed"]
        raising = f"asyncio.run({facts.name}(...))" if facts.is_async else f"{facts.name}(...)"
        for exception in facts.raises:
            lines += ["", "",
                      f"def test_{facts.name}_raises_{_snake(exception)}() -> None:",
                      f"    with pytest.raises({exception}):",
                      f"        {raising}  # TODO: arguments that raise {exception}"]
    return SkeletonOutcome("\n".join(lines) + "\n", tuple(f.name for f in functions),
                        tuple(methods))


def reparses(code: str) -> bool:
    return not isinstance(parse_python(code), SyntaxError)
