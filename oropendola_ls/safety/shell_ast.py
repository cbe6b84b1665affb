"""Parsing shell text with tree-sitter-bash, and resolving words the way bash would.

One job: turn text into a tree and argument nodes into strings. No judgement happens here.

`resolve_word` returns a `Word` whose ``value`` is the string bash would produce, or ``None`` when
the word is dynamic (a substitution or an unknown variable). Quote removal, backslashes,
``$'..'``, ``~``, ``$HOME`` and known variables are handled; brace lists (``a{b,c}``) expand into
``alts``. Grammar shapes are pinned by ``tests/safety/test_gate_grammar.py`` (tree-sitter-bash
0.25.1).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from itertools import pairwise

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

__all__ = [
    "DEFAULT_IFS",
    "LANGUAGE",
    "SUBSTITUTIONS",
    "Word",
    "brace_expand",
    "decode_ansi_c",
    "get_parser",
    "misparsed_ansi_c",
    "parse",
    "resolve_word",
    "split_fields",
    "unescape_double_quoted",
    "unescape_word",
]

LANGUAGE = Language(tree_sitter_bash.language())

SUBSTITUTIONS = frozenset({"command_substitution", "process_substitution"})

_local = threading.local()


def get_parser() -> Parser:
    """The calling thread's parser (tree-sitter parsers are not thread-safe)."""
    parser: Parser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = Parser(LANGUAGE)
        _local.parser = parser
    return parser


def parse(src: bytes) -> Node:
    """Parse ``src`` and return the root node.

    A trailing newline is added when missing: tree-sitter-bash 0.25.1 spends ~100 µs in error
    recovery at end of input after a pipeline of three or more stages, and ~7 µs when the line is
    terminated. Bash reads the line the same way either way (a trailing backslash is kept as is).
    Offsets of every node stay inside the original text.
    """
    if not src.endswith(b"\n") and not src.endswith(b"\\"):
        src += b"\n"
    return get_parser().parse(src).root_node


class Word:
    """One shell word as bash would see it after expansion.

    ``value`` is None when the word is dynamic. ``vars`` names the variables it references
    (known or not), ``complex`` says the node has children worth scanning (substitutions,
    expansions), ``alts`` holds the words it expands to when that is more than one (brace lists
    ``a{b,c}``, field splitting of unquoted expansions), ``vanish`` says it expands to no word.
    Rarely-set attributes are class-level defaults: creating words is on the hot path.
    """

    vars: tuple[str, ...] = ()
    complex: bool = False
    quoted: bool = False
    alts: tuple[str, ...] = ()
    vanish: bool = False
    sub_flow: int = 0  # data-flow flags of substitutions inside (filled by the analyzer)

    def __init__(self, value: str | None, node: Node | None, start: int, end: int) -> None:
        self.value = value
        self.node = node
        self.start = start
        self.end = end

    @classmethod
    def synthetic(cls, value: str | None, start: int = 0, end: int = 0) -> Word:
        return cls(value, None, start, end)

    def __repr__(self) -> str:
        return f"Word({self.value!r})"


_ANSI_SIMPLE = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")


def decode_ansi_c(body: str) -> str:
    """Decode the inside of ``$'...'`` as bash does."""
    if "\\" not in body:
        return body
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch != "\\" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ANSI_SIMPLE:
            out.append(_ANSI_SIMPLE[nxt])
            i += 2
        elif nxt in _OCT:
            j = i + 1
            while j < n and j < i + 4 and body[j] in _OCT:
                j += 1
            out.append(chr(int(body[i + 1 : j], 8) & 0xFF))
            i = j
        elif nxt in "xuU":
            limit = {"x": 2, "u": 4, "U": 8}[nxt]
            j = i + 2
            while j < n and j < i + 2 + limit and body[j] in _HEX:
                j += 1
            if j == i + 2:
                out.append("\\" + nxt)
            else:
                code = int(body[i + 2 : j], 16)
                out.append(chr(code) if code < 0x110000 else "\ufffd")
            i = j
        elif nxt == "c" and i + 2 < n:
            out.append(chr(ord(body[i + 2]) & 0x1F))
            i += 3
        else:
            out.append("\\" + nxt)
            i += 2
    return "".join(out)


def ansi_c_node(text: str) -> str:
    """The value of an ``ansi_c_string`` node's text. tree-sitter-bash 0.25.1 can run the node past
    the real closing quote (``$'\\\\'\\'``); what follows it is read as unquoted word text."""
    i, n = 2, len(text)
    while i < n - 1:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == "'":
            break
        else:
            i += 1
    return decode_ansi_c(text[2:i]) + unescape_word(text[i + 1 :])


def _ansi_c_close(text: str) -> int:
    """Index of the real closing quote of ``$'...'`` text (escapes honoured), or -1."""
    i, n = 2, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == "'":
            return i
        else:
            i += 1
    return -1


def misparsed_ansi_c(root: Node, src: bytes) -> bool:
    """tree-sitter-bash 0.25.1 ends ``$'...'`` at the first quote not preceded by a backslash, so
    ``$'\\\\'`` swallows text up to a later quote — possibly whole commands. True when any
    ``ansi_c_string`` node does not end at its real closing quote."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ansi_c_string":
            text = src[node.start_byte : node.end_byte].decode("utf-8", "surrogatepass")
            if _ansi_c_close(text) != len(text) - 1:
                return True
        elif node.child_count:
            stack.extend(node.children)
    return False


def unescape_word(text: str) -> str:
    """Quote removal for an unquoted word: ``\\x`` is ``x``; backslash-newline disappears."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def unescape_double_quoted(text: str) -> str:
    """Inside double quotes only ``\\$ \\` \\" \\\\`` and backslash-newline are escapes."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def brace_expand(value: str, limit: int = 64) -> tuple[str, ...]:
    """Expand comma brace lists (``a{b,c}d`` -> ``abd acd``), bounded; ranges are left alone."""
    results = [value]
    for _ in range(8):
        changed = False
        nxt: list[str] = []
        for item in results:
            start = item.find("{")
            expanded = False
            while start != -1:
                depth, j = 0, start
                commas: list[int] = []
                while j < len(item):
                    c = item[j]
                    if c == "{":
                        depth += 1
                    elif c == "}":
                        depth -= 1
                        if depth == 0:
                            break
                    elif c == "," and depth == 1:
                        commas.append(j)
                    j += 1
                if j < len(item) and commas:
                    bounds = [start, *commas, j]
                    head, tail = item[:start], item[j + 1 :]
                    for a, b in pairwise(bounds):
                        nxt.append(head + item[a + 1 : b] + tail)
                    expanded = changed = True
                    break
                start = item.find("{", start + 1)
            if not expanded:
                nxt.append(item)
            if len(nxt) > limit:
                return tuple(nxt[:limit])
        results = nxt
        if not changed:
            break
    return tuple(results)


_ASSIGNMENT_TILDE_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _tilde(raw: str, value: str, home: str | None) -> str | None:
    """Tilde expansion of an unquoted leading ``~`` (also after ``NAME=``, as bash does)."""
    if raw.startswith("~"):
        rest = value[1:]
        if rest == "" or rest.startswith("/"):
            return None if home is None else home + rest
        return None  # ~user, ~+, ~-: not known here
    eq = raw.find("=~")
    if eq > 0 and all(c in _ASSIGNMENT_TILDE_OK for c in raw[:eq]) and not raw[0].isdigit():
        vq = value.find("=~")
        if vq == eq:
            rest = value[eq + 2 :]
            if rest == "" or rest.startswith("/"):
                return None if home is None else value[: eq + 1] + home + rest
    return value


_REGION_START = "\x00"
_REGION_END = "\x01"
DEFAULT_IFS = " \t\n"


def split_fields(value: str, ifs: str) -> list[str]:
    """Field splitting of a resolved word: only text between region markers (results of unquoted
    expansions) splits, on the characters of ``ifs``; whitespace separators collapse."""
    fields: list[str] = []
    current: list[str] = []
    in_region = False
    pending = False  # a field has started (possibly empty, after a non-whitespace separator)
    for c in value:
        if c == _REGION_START:
            in_region = True
        elif c == _REGION_END:
            in_region = False
        elif in_region and c in ifs:
            if c in " \t\n":
                if current or pending:
                    fields.append("".join(current))
                    current = []
                    pending = False
            else:
                fields.append("".join(current))
                current = []
                pending = False
        else:
            current.append(c)
            pending = True
    if current or pending:
        fields.append("".join(current))
    return fields


class _Resolver:
    __slots__ = ("complex", "dynamic", "env", "quoted", "split", "src", "vars")

    def __init__(self, src: bytes, env: Mapping[str, str | None]) -> None:
        self.src = src
        self.env = env
        self.vars: list[str] = []
        self.dynamic = False
        self.complex = False
        self.quoted = False
        self.split = False  # an unquoted expansion contributed text: field splitting applies

    def text(self, node: Node) -> str:
        return self.src[node.start_byte : node.end_byte].decode("utf-8", "surrogatepass")

    def variable(self, name: str) -> str | None:
        self.vars.append(name)
        value = self.env.get(name)
        if value is None:
            self.dynamic = True
        return value

    def unquoted(self, value: str | None, quoted: bool) -> str | None:
        if value is None or quoted:
            return value
        self.split = True
        return _REGION_START + value + _REGION_END

    def part(self, node: Node, first: bool, quoted: bool = False) -> str | None:
        kind = node.type
        if kind == "word":
            raw = self.text(node)
            value = unescape_word(raw) if "\\" in raw else raw
            if first and "~" in raw:
                expanded = _tilde(raw, value, self.env.get("HOME"))
                if expanded is None:
                    self.dynamic = True
                return expanded
            return value
        if kind == "raw_string":
            self.quoted = True
            return self.text(node)[1:-1]
        if kind == "string" or kind == "translated_string":
            self.quoted = True
            return self.string(node)
        if kind == "ansi_c_string":
            self.quoted = True
            return ansi_c_node(self.text(node))
        if kind == "concatenation":
            out: list[str] = []
            ok = True
            for i, child in enumerate(node.children):
                got = self.part(child, first and i == 0, quoted)
                if got is None:
                    ok = False
                else:
                    out.append(got)
            return "".join(out) if ok else None
        if kind == "simple_expansion":
            self.complex = True
            name_node = node.named_children
            if len(name_node) == 1 and name_node[0].type == "variable_name":
                return self.unquoted(self.variable(self.text(name_node[0])), quoted)
            self.dynamic = True
            return None
        if kind == "expansion":
            self.complex = True
            children = node.children
            if len(children) == 3 and children[1].type == "variable_name":
                return self.unquoted(self.variable(self.text(children[1])), quoted)
            for child in node.named_children:
                if child.type == "variable_name":
                    self.vars.append(self.text(child))
            self.dynamic = True
            return None
        if kind == "number":
            return self.text(node)
        self.complex = True
        self.dynamic = True
        return None

    def string(self, node: Node) -> str | None:
        out: list[str] = []
        ok = True
        src = self.src
        pos = node.start_byte + 1
        end = node.end_byte - 1
        if node.type == "translated_string":
            pos += 1
        for child in node.children:
            if not child.is_named:
                continue
            if child.start_byte > pos:
                out.append(
                    unescape_double_quoted(
                        src[pos : child.start_byte].decode("utf-8", "surrogatepass")
                    )
                )
            if child.type == "string_content":
                out.append(unescape_double_quoted(self.text(child)))
            else:
                got = self.part(child, False, True)
                if got is None:
                    ok = False
                else:
                    out.append(got)
            pos = child.end_byte
        if end > pos:
            out.append(unescape_double_quoted(src[pos:end].decode("utf-8", "surrogatepass")))
        return "".join(out) if ok else None


def resolve_word(node: Node, src: bytes, env: Mapping[str, str | None]) -> Word:
    """Resolve an argument node. ``env`` holds known variables (``HOME``, ``PWD``, assignments)."""
    start, end = node.start_byte, node.end_byte
    if node.type == "word":
        raw = src[start:end].decode("utf-8", "surrogatepass")
        if "\\" not in raw and "~" not in raw:
            return Word(raw, node, start, end)
    r = _Resolver(src, env)
    value = r.part(node, True)
    if r.dynamic:
        value = None
    fields: list[str] | None = None
    if r.split and value is not None:
        ifs = env.get("IFS", DEFAULT_IFS)
        fields = split_fields(value, DEFAULT_IFS if ifs is None else ifs)
        value = fields[0] if len(fields) == 1 else " ".join(fields)
    alts: tuple[str, ...] = ()
    if value is not None and node.type == "concatenation" and "{" in value and "," in value:
        alts = brace_expand(value)
        if len(alts) == 1:
            alts = ()
    if fields is not None and len(fields) != 1:
        alts = tuple(fields)
    word = Word(value, node, start, end)
    if r.vars:
        word.vars = tuple(r.vars)
    if r.complex or (node.child_count > 0 and node.type not in ("word", "raw_string")):
        word.complex = True
    if r.quoted:
        word.quoted = True
    if alts:
        word.alts = alts
    if fields is not None and not fields:
        word.vanish = True
    return word
