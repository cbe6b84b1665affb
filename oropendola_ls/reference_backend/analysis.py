"""Static checks behind ``files.analyze``: pure functions from a file's text to findings.

Any text is checked for trailing whitespace, tab and space indentation mixed in one file, lines
over `MAX_LINE_LENGTH` characters and git conflict markers. Python (language ``python``, or a
``.py``/``.pyi`` path) is parsed with `ast` on the running interpreter's grammar and checked for
syntax errors, unused imports, unused local variables, bare ``except:``, mutable default
arguments and functions whose cyclomatic complexity passes `MAX_COMPLEXITY`.

The checks prefer missing a problem to reporting one that is not there:

- an import counts as used when its name is read anywhere in the module, in any scope, or
  appears in a string that reads as a name or type expression (``__all__``, quoted
  annotations, ``cast("Foo", x)``); ``__init__.py`` files (re-exports), ``from __future__``,
  star imports and ``import x as x`` are not checked;
- a local variable is one bound by ``=``, an annotated assignment, ``:=`` or ``except ... as``
  in the function's own body; tuple unpacking, ``for`` and ``with`` targets are not reported,
  a variable counts as read when any code in the function (nested functions included) reads
  or updates it (``x += 1``), and functions calling ``locals``, ``vars``, ``exec`` or
  ``eval`` are skipped.

Lines are numbered from 1 and columns count Unicode code points from 0 (LSP positions with a
code-point encoding); `ast` gives UTF-8 byte columns, converted here. At most
`MAX_FINDINGS_PER_RULE` findings of one rule are listed, then one more says how many were left
out.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from oropendola_ls.reference_backend.source_text import split_lines, valid_unicode

Severity = Literal["error", "warning", "info", "hint"]

MAX_LINE_LENGTH = 120
MAX_COMPLEXITY = 10
MAX_FINDINGS_PER_RULE = 1000
_BOM = "\ufeff"
_CONFLICT_MARKERS = ("<<<<<<< ", ">>>>>>> ", "||||||| ")
_CONFLICT_SEPARATOR = "======="
_TYPE_EXPRESSION = re.compile(r"[\w.\[\], |]{1,200}")
_DYNAMIC_SCOPE_CALLS = frozenset({"locals", "vars", "exec", "eval"})
_MUTABLE_CALLS = frozenset({"list", "dict", "set"})
_NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_BRANCHES = (ast.If, ast.IfExp, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.match_case)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    start_line: int
    """1-based."""
    start_column: int
    """0-based, in code points."""
    end_line: int
    end_column: int

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "startLine": self.start_line,
            "startColumn": self.start_column,
            "endLine": self.end_line,
            "endColumn": self.end_column,
        }

    @property
    def sort_key(self) -> tuple[int, int, str, int, int, str]:
        return (
            self.start_line, self.start_column, self.rule,
            self.end_line, self.end_column, self.message,
        )


def is_python(path: str | None, language: str | None) -> bool:
    if language is not None and language.strip().lower() == "python":
        return True
    return path is not None and PurePosixPath(path).suffix.lower() in (".py", ".pyi")


def analyze(path: str | None, content: str, language: str | None) -> list[Finding]:
    """Every finding for the file, ordered by line, column and rule."""
    text = valid_unicode(content)
    lines = split_lines(text)
    findings = list(_text_findings(lines))
    if is_python(path, language):
        findings.extend(_python_findings(path, text))
    findings.sort(key=lambda finding: finding.sort_key)
    return _capped(findings)


def _capped(findings: Sequence[Finding]) -> list[Finding]:
    total = Counter(finding.rule for finding in findings)
    listed: Counter[str] = Counter()
    kept: list[Finding] = []
    for finding in findings:
        listed[finding.rule] += 1
        if listed[finding.rule] <= MAX_FINDINGS_PER_RULE:
            kept.append(finding)
        elif listed[finding.rule] == MAX_FINDINGS_PER_RULE + 1:
            kept.append(_left_out(finding, total[finding.rule] - MAX_FINDINGS_PER_RULE))
    return kept


def _left_out(first_left_out: Finding, count: int) -> Finding:
    return Finding(
        first_left_out.rule,
        first_left_out.severity,
        f"{count} more '{first_left_out.rule}' findings from here on are not listed",
        first_left_out.start_line,
        first_left_out.start_column,
        first_left_out.end_line,
        first_left_out.end_column,
    )


# -- any text ------------------------------------------------------------------------------------


def _text_findings(lines: Sequence[str]) -> Iterator[Finding]:
    yield from _trailing_whitespace(lines)
    yield from _long_lines(lines)
    yield from _mixed_indentation(lines)
    yield from _conflict_markers(lines)


def _trailing_whitespace(lines: Sequence[str]) -> Iterator[Finding]:
    for number, line in enumerate(lines, 1):
        kept = len(line.rstrip())
        if kept < len(line):
            yield Finding(
                "trailing-whitespace", "info", "trailing whitespace",
                number, kept, number, len(line),
            )


def _long_lines(lines: Sequence[str]) -> Iterator[Finding]:
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_LENGTH:
            yield Finding(
                "line-too-long", "info",
                f"line is {len(line)} characters long (more than {MAX_LINE_LENGTH})",
                number, MAX_LINE_LENGTH, number, len(line),
            )


def _mixed_indentation(lines: Sequence[str]) -> Iterator[Finding]:
    """One finding, on the first line indented the way fewer lines are (tabs on a tie)."""
    indented: dict[str, list[int]] = {"\t": [], " ": []}
    for index, line in enumerate(lines):
        if line[:1] in indented and line.strip():
            indented[line[0]].append(index)
    tabs, spaces = indented["\t"], indented[" "]
    if not tabs or not spaces:
        return
    minority, majority = ("tabs", "spaces") if len(tabs) <= len(spaces) else ("spaces", "tabs")
    index = (tabs if minority == "tabs" else spaces)[0]
    line = lines[index]
    width = len(line) - len(line.lstrip(" \t"))
    yield Finding(
        "mixed-indentation", "warning",
        f"this line is indented with {minority} but {max(len(tabs), len(spaces))} lines are "
        f"indented with {majority}; use one or the other in a file",
        index + 1, 0, index + 1, width,
    )


def _conflict_markers(lines: Sequence[str]) -> Iterator[Finding]:
    markers = [i for i, line in enumerate(lines) if line.startswith(_CONFLICT_MARKERS)]
    if not markers:  # a lone "=======" is more likely a heading underline
        return
    separators = [i for i, line in enumerate(lines) if line.rstrip() == _CONFLICT_SEPARATOR]
    for index in sorted(markers + separators):
        yield Finding(
            "conflict-marker", "error",
            f"git conflict marker {lines[index][:7]!r}: resolve the merge conflict",
            index + 1, 0, index + 1, len(lines[index]),
        )


# -- Python --------------------------------------------------------------------------------------


class _Columns:
    """Converts `ast` positions (1-based line, UTF-8 byte column) to code-point columns."""

    def __init__(self, lines: Sequence[str], first_line_shift: int) -> None:
        self.lines = lines
        self.first_line_shift = first_line_shift

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 1 <= line <= len(self.lines) else ""

    def chars(self, line: int, byte_column: int) -> int:
        """The code-point column of ``byte_column`` in the parsed text's ``line``."""
        text = self.line_text(line)
        if text.isascii():
            return min(byte_column, len(text))
        return len(text.encode()[:byte_column].decode(errors="ignore"))

    def _in_file(self, line: int, column: int) -> int:
        """A code-point column of the parsed text, clamped to its line, as a file column."""
        clamped = max(0, min(column, len(self.line_text(line))))
        return clamped + (self.first_line_shift if line == 1 else 0)

    def finding(self, node: ast.AST, rule: str, severity: Severity, message: str) -> Finding:
        """A finding covering ``node``."""
        start_line = getattr(node, "lineno", 1)
        end_line = getattr(node, "end_lineno", None) or start_line
        start = self.chars(start_line, getattr(node, "col_offset", 0))
        end_offset = getattr(node, "end_col_offset", None)
        end = self.chars(end_line, end_offset) if end_offset is not None else start
        return Finding(
            rule, severity, message,
            start_line, self._in_file(start_line, start), end_line, self._in_file(end_line, end),
        )

    def span(
        self, line: int, start: int, end: int, rule: str, severity: Severity, message: str
    ) -> Finding:
        """A finding on code-point columns ``start``..``end`` of the parsed text's ``line``."""
        return Finding(
            rule, severity, message,
            line, self._in_file(line, start), line, self._in_file(line, end),
        )


def _python_findings(path: str | None, text: str) -> list[Finding]:
    source = text.removeprefix(_BOM)
    columns = _Columns(split_lines(source), len(text) - len(source))
    try:
        tree = ast.parse(source, filename=path or "<file>", type_comments=False)
    except SyntaxError as error:
        return [_syntax_error(error, columns)]
    except (RecursionError, MemoryError, ValueError):
        return [_skipped(columns)]
    try:
        return [
            *_unused_imports(tree, path, columns),
            *_unused_variables(tree, columns),
            *_bare_excepts(tree, columns),
            *_mutable_defaults(tree, columns),
            *_complex_functions(tree, columns),
        ]
    except RecursionError:
        return [_skipped(columns)]


def _skipped(columns: _Columns) -> Finding:
    return columns.span(
        1, 0, 0, "analysis-skipped", "info",
        "Python checks were skipped: the code is nested too deeply to analyse",
    )


def _syntax_error(error: SyntaxError, columns: _Columns) -> Finding:
    line = max(1, min(error.lineno or 1, len(columns.lines)))
    start = (error.offset or 1) - 1 if error.lineno == line else len(columns.line_text(line))
    end = start + 1
    if error.end_lineno == line and error.end_offset and error.end_offset - 1 > start:
        end = error.end_offset - 1
    return columns.span(line, start, end, "syntax-error", "error", f"syntax error: {error.msg}")


def _names_read(nodes: Iterable[ast.AST]) -> set[str]:
    return {
        node.id for node in nodes
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store)
    }


def _names_in_strings(tree: ast.AST) -> set[str]:
    """Names in strings that read as a name or a type expression (``"Foo"``, ``"list[Bar]"``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if not _TYPE_EXPRESSION.fullmatch(node.value.strip()):
            continue
        try:
            expression = ast.parse(node.value.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError):
            continue
        found |= _names_read(ast.walk(expression))
    return found


def _unused_imports(tree: ast.Module, path: str | None, columns: _Columns) -> Iterator[Finding]:
    if path is not None and PurePosixPath(path).name == "__init__.py":
        return
    used = _names_read(ast.walk(tree)) | _names_in_strings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".", 1)[0]
                if alias.asname != alias.name and bound not in used:
                    message = (
                        f"'{bound}' is imported but never used" if alias.name == bound
                        else f"'{alias.name}' is imported as '{bound}' but '{bound}' is never used"
                    )
                    yield columns.finding(alias, "unused-import", "warning", message)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            source = "." * node.level + (node.module or "")
            for alias in node.names:
                bound = alias.asname or alias.name
                if alias.name != "*" and alias.asname != alias.name and bound not in used:
                    yield columns.finding(
                        alias, "unused-import", "warning",
                        f"'{bound}' is imported from '{source}' but never used",
                    )


def _functions(tree: ast.AST) -> Iterator[_FunctionNode]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _own_nodes(roots: Iterable[ast.AST], stop: tuple[type[ast.AST], ...]) -> Iterator[ast.AST]:
    """``roots`` and everything under them, without descending into nodes of ``stop`` types."""
    stack = [root for root in roots if not isinstance(root, stop)]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(
            child for child in ast.iter_child_nodes(node) if not isinstance(child, stop)
        )


def _parameters(function: _FunctionNode | ast.Lambda) -> list[ast.arg]:
    args = function.args
    extra = [arg for arg in (args.vararg, args.kwarg) if arg is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def _unused_variables(tree: ast.AST, columns: _Columns) -> Iterator[Finding]:
    for function in _functions(tree):
        everything = list(ast.walk(function))
        if any(
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _DYNAMIC_SCOPE_CALLS
            for node in everything
        ):
            continue
        own = list(_own_nodes(function.body, _NESTED_SCOPES + _COMPREHENSIONS))
        declared = {
            name for node in own if isinstance(node, ast.Global | ast.Nonlocal)
            for name in node.names
        }
        read = _names_read(everything) | {
            node.target.id for node in everything
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name)
        }
        skipped = declared | read | {arg.arg for arg in _parameters(function)}
        bindings: dict[str, Finding] = {}
        for finding_name, finding in _bindings(own, function.name, columns):
            if finding_name in skipped or finding_name.startswith("_"):
                continue
            earlier = bindings.get(finding_name)
            if earlier is None or finding.sort_key < earlier.sort_key:
                bindings[finding_name] = finding
        yield from bindings.values()


def _bindings(
    own: Iterable[ast.AST], function_name: str, columns: _Columns
) -> Iterator[tuple[str, Finding]]:
    """(name, finding) for each simple binding of a local variable among ``own``."""
    def unused(name: str) -> str:
        return f"local variable '{name}' in '{function_name}' is assigned but never used"

    for node in own:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif (
            isinstance(node, ast.AnnAssign) and node.value is not None
        ) or isinstance(node, ast.NamedExpr):
            targets = [node.target]
        elif isinstance(node, ast.ExceptHandler) and node.name:
            yield node.name, _except_name(node, node.name, columns, unused(node.name))
        for target in targets:
            if isinstance(target, ast.Name):
                yield target.id, columns.finding(
                    target, "unused-variable", "warning", unused(target.id)
                )


def _except_name(
    handler: ast.ExceptHandler, name: str, columns: _Columns, message: str
) -> Finding:
    """The finding on ``name`` in ``except ... as name`` (ast keeps no position for it)."""
    last_line = handler.body[0].lineno if handler.body else handler.lineno
    pattern = re.compile(rf"\bas\s+({re.escape(name)})\b")
    for line in range(handler.lineno, last_line + 1):
        match = pattern.search(columns.line_text(line))
        if match:
            return columns.span(
                line, match.start(1), match.end(1), "unused-variable", "warning", message
            )
    return columns.finding(handler, "unused-variable", "warning", message)


def _bare_excepts(tree: ast.AST, columns: _Columns) -> Iterator[Finding]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is None:
            start = columns.chars(node.lineno, node.col_offset)
            yield columns.span(
                node.lineno, start, start + len("except"), "bare-except", "warning",
                "bare 'except:' also catches KeyboardInterrupt and SystemExit; "
                "catch Exception or something narrower",
            )


def mutable_default_kind(default: ast.expr) -> str | None:
    """``list``, ``dict`` or ``set`` when a default argument is a new mutable object."""
    if isinstance(default, ast.List | ast.ListComp):
        return "list"
    if isinstance(default, ast.Dict | ast.DictComp):
        return "dict"
    if isinstance(default, ast.Set | ast.SetComp):
        return "set"
    if (
        isinstance(default, ast.Call) and isinstance(default.func, ast.Name)
        and default.func.id in _MUTABLE_CALLS
    ):
        return default.func.id
    return None


def _mutable_defaults(tree: ast.AST, columns: _Columns) -> Iterator[Finding]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        pairs = [
            *zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True),
            *(
                (arg, default)
                for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                if default is not None
            ),
        ]
        owner = "a lambda" if isinstance(node, ast.Lambda) else f"'{node.name}'"
        for arg, default in pairs:
            kind = mutable_default_kind(default)
            if kind is not None:
                yield columns.finding(
                    default, "mutable-default", "warning",
                    f"parameter '{arg.arg}' of {owner} defaults to a {kind} that is created "
                    f"once and shared by every call; default to None and make a new {kind} "
                    "in the body",
                )


def complexity(function: _FunctionNode) -> int:
    """McCabe cyclomatic complexity of the function's own code (nested functions excluded)."""
    score = 1
    own = _own_nodes(function.body, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    for node in own:
        if isinstance(node, _BRANCHES):
            score += 1
        elif isinstance(node, ast.BoolOp):
            score += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            score += 1 + len(node.ifs)
    return score


def _complex_functions(tree: ast.AST, columns: _Columns) -> Iterator[Finding]:
    for function in _functions(tree):
        score = complexity(function)
        if score <= MAX_COMPLEXITY:
            continue
        message = (
            f"'{function.name}' has cyclomatic complexity {score} (more than "
            f"{MAX_COMPLEXITY}); split it into smaller functions"
        )
        line = function.lineno
        text = columns.line_text(line)
        match = re.compile(rf"\bdef\s+({re.escape(function.name)})\b").search(text)
        if match:
            yield columns.span(line, match.start(1), match.end(1), "complexity", "info", message)
        else:
            start = columns.chars(line, function.col_offset)
            yield columns.span(line, start, len(text), "complexity", "info", message)
