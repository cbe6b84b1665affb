"""Facts about code read without running it: Python through `ast`, other languages by pattern.

For each Python function: what it takes (parameters with annotations and defaults), what it
returns (the annotation and the kinds of the returned expressions), what it calls, what it
raises, and its docstring's first line. For other languages: the lines that look like
definitions, found with one set of regular expressions per language family.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
MAX_SHOWN_CHARS = 60


def shorten(text: str, most: int = MAX_SHOWN_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= most else flat[: most - 1] + "…"


def parse_python(code: str) -> ast.Module | SyntaxError:
    """The module, or the `SyntaxError` (also for code too deep or too odd for `ast`)."""
    try:
        return ast.parse(code, type_comments=False)
    except SyntaxError as error:
        return error
    except (RecursionError, MemoryError, ValueError) as error:
        return SyntaxError(f"cannot be parsed ({type(error).__name__})")


def dotted_name(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def own_nodes(function: _FunctionNode) -> Iterator[ast.AST]:
    """The nodes of ``function``'s own body: nested functions, classes and lambdas left out."""
    stack: list[ast.AST] = list(reversed(function.body))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(
            child for child in reversed(list(ast.iter_child_nodes(node)))
            if not isinstance(child, _SCOPES)
        )


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    """With ``*`` or ``**`` for the variadic ones."""
    annotation: str | None
    default: str | None
    keyword_only: bool = False

    @property
    def bare_name(self) -> str:
        return self.name.lstrip("*")

    @property
    def variadic(self) -> bool:
        return self.name.startswith("*")

    def render(self) -> str:
        text = self.name
        if self.annotation is not None:
            text += f": {self.annotation}"
            if self.default is not None:
                text += f" = {self.default}"
        elif self.default is not None:
            text += f"={self.default}"
        return text


@dataclass(frozen=True, slots=True)
class FunctionFacts:
    name: str
    qualified_name: str
    is_async: bool
    is_method: bool
    line: int
    parameters: tuple[Parameter, ...]
    """Without the ``self``/``cls`` of a method."""
    returns: str | None
    return_kinds: tuple[str, ...]
    is_generator: bool
    calls: tuple[str, ...]
    raises: tuple[str, ...]
    docstring: str | None
    body_line: int
    """The line of the first statement of the body."""
    receiver: str | None = None
    """``self`` or ``cls`` for a method (left out of ``parameters``)."""

    @property
    def signature(self) -> str:
        rendered: list[str] = [self.receiver] if self.receiver else []
        for index, param in enumerate(self.parameters):
            earlier = self.parameters[:index]
            if param.keyword_only and not any(p.variadic or p.keyword_only for p in earlier):
                rendered.append("*")  # keyword-only parameters with no *args before them
            rendered.append(param.render())
        params = ", ".join(rendered)
        arrow = f" -> {self.returns}" if self.returns else ""
        return f"{'async def' if self.is_async else 'def'} {self.name}({params}){arrow}"

    @property
    def summary(self) -> str | None:
        if not self.docstring:
            return None
        first = self.docstring.strip().split("\n\n", 1)[0]
        return " ".join(first.split()) or None

    @property
    def returns_value(self) -> bool:
        """Whether callers get a value back (an annotation other than None, or a ``return x``)."""
        if self.returns is not None:
            return self.returns not in ("None", "NoReturn", "Never")
        return bool(self.return_kinds)


@dataclass(frozen=True, slots=True)
class ClassFacts:
    name: str
    line: int
    bases: tuple[str, ...]
    docstring: str | None
    methods: tuple[FunctionFacts, ...]

    @property
    def summary(self) -> str | None:
        if not self.docstring:
            return None
        return " ".join(self.docstring.strip().split("\n\n", 1)[0].split()) or None


def _unparse(node: ast.AST) -> str:
    try:
        return shorten(ast.unparse(node))
    except (ValueError, RecursionError):  # unparse refuses a few odd trees
        return "…"


def _is_static(function: _FunctionNode) -> bool:
    return any(dotted_name(d) in ("staticmethod",) for d in function.decorator_list)


def parameters(function: _FunctionNode, is_method: bool) -> tuple[Parameter, ...]:
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += list(args.defaults)
    found: list[Parameter] = []

    def annotation(arg: ast.arg) -> str | None:
        return None if arg.annotation is None else _unparse(arg.annotation)

    for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        if index == 0 and is_method and not _is_static(function) and arg.arg in ("self", "cls"):
            continue
        found.append(Parameter(arg.arg, annotation(arg),
                               None if default is None else _unparse(default)))
    if args.vararg is not None:
        found.append(Parameter("*" + args.vararg.arg, annotation(args.vararg), None))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        found.append(Parameter(arg.arg, annotation(arg),
                               None if kw_default is None else _unparse(kw_default),
                               keyword_only=True))
    if args.kwarg is not None:
        found.append(Parameter("**" + args.kwarg.arg, annotation(args.kwarg), None))
    return tuple(found)


_KINDS: tuple[tuple[type[ast.AST] | tuple[type[ast.AST], ...], str], ...] = (
    ((ast.Dict, ast.DictComp), "a dict"),
    ((ast.List, ast.ListComp), "a list"),
    ((ast.Set, ast.SetComp), "a set"),
    (ast.Tuple, "a tuple"),
    (ast.GeneratorExp, "a generator"),
    (ast.JoinedStr, "an f-string"),
    ((ast.Compare, ast.BoolOp), "a boolean expression"),
    (ast.BinOp, "an arithmetic expression"),
    (ast.UnaryOp, "a unary expression"),
    (ast.IfExp, "a conditional expression"),
    (ast.Lambda, "a lambda"),
    (ast.Subscript, "an item or slice"),
)


def expression_kind(node: ast.expr) -> str:
    """A short description of what an expression is (``a dict``, ``the result of `f()```)."""
    if isinstance(node, ast.Constant):
        if node.value is None or isinstance(node.value, bool):
            return f"`{node.value!r}`"
        kind = {str: "a string", bytes: "bytes", int: "a number", float: "a number"}
        return f"{kind.get(type(node.value), 'a constant')} constant"
    if isinstance(node, ast.Name):
        return f"the variable `{node.id}`"
    if isinstance(node, ast.Attribute):
        name = dotted_name(node)
        return f"the attribute `{name}`" if name else "an attribute"
    if isinstance(node, ast.Call):
        name = dotted_name(node.func)
        return f"the result of `{name}()`" if name else "the result of a call"
    if isinstance(node, ast.Await):
        return "an awaited " + expression_kind(node.value).removeprefix("the ")
    for types, description in _KINDS:
        if isinstance(node, types):
            return description
    return "an expression"


def looks_like_method(function: _FunctionNode) -> bool:
    """A function whose first parameter is ``self`` or ``cls`` (a method selected on its own)."""
    first = [*function.args.posonlyargs, *function.args.args][:1]
    return bool(first) and first[0].arg in ("self", "cls")


def function_facts(function: _FunctionNode, owner: str | None) -> FunctionFacts:
    is_method = owner is not None or looks_like_method(function)
    params = parameters(function, is_method)
    first = [*function.args.posonlyargs, *function.args.args][:1]
    receiver = first[0].arg if first and (not params or params[0].name != first[0].arg) else None
    return_kinds: list[str] = []
    calls: set[str] = set()
    raises: set[str] = set()
    raised_calls: set[int] = set()
    generator = False
    for node in own_nodes(function):
        if isinstance(node, ast.Return) and node.value is not None:
            kind = expression_kind(node.value)
            if kind not in return_kinds:
                return_kinds.append(kind)
        elif isinstance(node, ast.Yield | ast.YieldFrom):
            generator = True
        elif isinstance(node, ast.Call):
            name = dotted_name(node.func)
            if name is not None and id(node) not in raised_calls:
                calls.add(name)
        elif isinstance(node, ast.Raise) and node.exc is not None:
            if isinstance(node.exc, ast.Call):  # constructing the exception is not a call to list
                raised_calls.add(id(node.exc))
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = dotted_name(target)
            if name is not None:
                raises.add(name)
    return FunctionFacts(
        name=function.name,
        qualified_name=f"{owner}.{function.name}" if owner else function.name,
        is_async=isinstance(function, ast.AsyncFunctionDef),
        is_method=is_method,
        line=function.lineno,
        parameters=params,
        returns=None if function.returns is None else _unparse(function.returns),
        return_kinds=tuple(return_kinds),
        is_generator=generator,
        calls=tuple(sorted(calls)),
        raises=tuple(sorted(raises)),
        docstring=ast.get_docstring(function),
        body_line=function.body[0].lineno,
        receiver=receiver,
    )


def definitions(tree: ast.Module) -> list[FunctionFacts | ClassFacts]:
    """The module's top-level functions and classes (with their methods), in source order."""
    found: list[FunctionFacts | ClassFacts] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(function_facts(node, None))
        elif isinstance(node, ast.ClassDef):
            methods = tuple(
                function_facts(item, node.name) for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
            bases = tuple(_unparse(base) for base in node.bases)
            found.append(ClassFacts(node.name, node.lineno, bases, ast.get_docstring(node),
                                    methods))
    return found


def all_functions(tree: ast.AST) -> Iterator[tuple[_FunctionNode, str | None]]:
    """Every function in ``tree`` with the class it is a method of (None otherwise)."""
    stack: list[tuple[ast.AST, str | None]] = [(tree, None)]
    while stack:
        node, owner = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield child, owner
                stack.append((child, None))
            elif isinstance(child, ast.ClassDef):
                stack.append((child, child.name))
            else:
                stack.append((child, None if isinstance(node, _SCOPES) else owner))


def module_calls(tree: ast.Module) -> list[str]:
    """Names called by the module's own top-level code (not inside functions or classes)."""
    calls: set[str] = set()
    stack: list[ast.AST] = [n for n in tree.body if not isinstance(n, _SCOPES)]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call):
            name = dotted_name(node.func)
            if name is not None:
                calls.add(name)
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, _SCOPES))
    return sorted(calls)


# -- other languages -----------------------------------------------------------------------------

_NAME = r"(?P<name>[A-Za-z_$][\w$]*)"
_C_LIKE_FUNCTION = (
    "function",
    rf"^[ \t]*(?:[\w:<>,*&\[\]]+[ \t]+)+[*&]*{_NAME}[ \t]*\([^;{{}}]*\)[ \t\w]*(?:\{{|$)",
)
_PATTERNS: dict[str, tuple[tuple[str, str], ...]] = {
    "javascript": (
        ("function", rf"\bfunction\*?[ \t]+{_NAME}"),
        ("class", rf"\bclass[ \t]+{_NAME}"),
        ("function", rf"\b(?:const|let|var)[ \t]+{_NAME}[ \t]*=[ \t]*(?:async[ \t]+)?"
                     r"(?:function\b|\([^)]*\)[ \t]*=>|[\w$]+[ \t]*=>)"),
        ("interface", rf"\binterface[ \t]+{_NAME}"),
        ("type", rf"^[ \t]*(?:export[ \t]+)?type[ \t]+{_NAME}[ \t]*(?:<[^=]*>)?[ \t]*="),
        ("enum", rf"\benum[ \t]+{_NAME}"),
    ),
    "go": (
        ("function", rf"^func[ \t]+(?:\([^)]*\)[ \t]*)?{_NAME}"),
        ("type", rf"^type[ \t]+{_NAME}"),
    ),
    "rust": (
        ("function", rf"\bfn[ \t]+{_NAME}"),
        ("struct", rf"\bstruct[ \t]+{_NAME}"),
        ("enum", rf"\benum[ \t]+{_NAME}"),
        ("trait", rf"\btrait[ \t]+{_NAME}"),
        ("module", rf"\bmod[ \t]+{_NAME}"),
    ),
    "java": (
        ("class", rf"\b(?:class|record)[ \t]+{_NAME}"),
        ("interface", rf"\binterface[ \t]+{_NAME}"),
        ("enum", rf"\benum[ \t]+{_NAME}"),
        ("function", rf"\bfun[ \t]+(?:<[^>]*>[ \t]*)?(?:[\w.]+\.)?{_NAME}"),
        _C_LIKE_FUNCTION,
    ),
    "c": (
        ("struct", rf"\b(?:struct|union|class)[ \t]+{_NAME}[ \t]*(?::[^{{;]*)?\{{"),
        ("enum", rf"\benum[ \t]+(?:class[ \t]+)?{_NAME}"),
        _C_LIKE_FUNCTION,
    ),
    "ruby": (
        ("function", rf"\bdef[ \t]+(?:self\.)?{_NAME}"),
        ("class", rf"\bclass[ \t]+{_NAME}"),
        ("module", rf"\bmodule[ \t]+{_NAME}"),
    ),
    "php": (
        ("function", rf"\bfunction[ \t]+&?{_NAME}"),
        ("class", rf"\b(?:class|interface|trait)[ \t]+{_NAME}"),
    ),
    "shell": (
        ("function", rf"^[ \t]*(?:function[ \t]+{_NAME}|(?P<alt>[A-Za-z_][\w-]*)[ \t]*\(\))"),
    ),
    "generic": (
        ("definition",
         rf"\b(?:function|def|fn|func|sub|proc|class|struct|interface|enum|trait|module)"
         rf"[ \t]+{_NAME}"),
    ),
}
_FAMILY = {
    "javascript": "javascript", "javascriptreact": "javascript", "typescript": "javascript",
    "typescriptreact": "javascript", "go": "go", "rust": "rust", "java": "java",
    "kotlin": "java", "csharp": "java", "scala": "java", "c": "c", "cpp": "c",
    "objective-c": "c", "ruby": "ruby", "php": "php", "shellscript": "shell", "sh": "shell",
    "bash": "shell", "zsh": "shell",
}
_COMPILED = {
    family: tuple((kind, re.compile(pattern, re.MULTILINE)) for kind, pattern in patterns)
    for family, patterns in _PATTERNS.items()
}
_NOT_NAMES = frozenset({
    "if", "for", "while", "switch", "return", "catch", "else", "new", "sizeof", "case", "do",
    "throw", "elif", "delete", "typeof", "await", "yield", "defined",
})


@dataclass(frozen=True, slots=True)
class Definition:
    kind: str
    name: str
    line: int


def language_family(language: str | None) -> str:
    return _FAMILY.get((language or "").lower(), "generic")


def pattern_definitions(code: str, language: str | None) -> list[Definition]:
    """Lines of ``code`` that look like definitions in ``language``, by line then name."""
    found: dict[tuple[int, str], Definition] = {}
    for kind, pattern in _COMPILED[language_family(language)]:
        for match in pattern.finditer(code):
            name = match.group("name") or (match.groupdict().get("alt") or "")
            if not name or name in _NOT_NAMES:
                continue
            line = code.count("\n", 0, match.start("name") if match.group("name")
                              else match.start()) + 1
            found.setdefault((line, name), Definition(kind, name, line))
    return [found[key] for key in sorted(found)]
