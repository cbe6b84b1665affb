"""Walking the tree: every simple command, substitution, redirection and data flow of a line.

One job: turn a command line into `Hit`s and `CommandRecord`s. It keeps a context while walking
(cwd through ``cd``, variables assigned in the line, functions defined, files downloaded), peels
wrappers (`unwrap.py`), applies program rules (`rules.py`), judges redirection targets, follows
pipes (download -> shell, secret -> network) and recurses into nested code with a depth limit.
The validator turns the result into a verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tree_sitter import Node

from oropendola_ls.safety import fallback, inline, rules, unwrap
from oropendola_ls.safety.invocation import (
    DECODE,
    DYNAMIC,
    FETCH,
    SECRET,
    SHELL,
    CommandRecord,
    Flow,
    Hit,
    Invocation,
    Scope,
    short,
)
from oropendola_ls.safety.shell_ast import (
    DEFAULT_IFS,
    SUBSTITUTIONS,
    Word,
    misparsed_ansi_c,
    parse,
    resolve_word,
    split_fields,
    unescape_double_quoted,
)
from oropendola_ls.safety.targets import (
    HOME,
    TRUSTED_BIN_DIRS,
    WORKSPACE,
    basename,
    classify_delete,
    is_benign_device,
    is_git_hooks,
    is_network_device,
    is_protected_write,
    is_secret_path,
    is_secret_var,
    resolve,
)
from oropendola_ls.safety.verdict import Decision, RiskLevel

__all__ = ["MAX_DEPTH", "Analysis", "analyze", "analyze_oversize", "resolved_words"]

MAX_DEPTH = 6  # nested code (sh -c, eval, heredocs into shells, python -c ...)
MAX_PEEL = 16  # wrapper levels in one simple command
MAX_NODES_DEPTH = 200  # tree recursion guard

_REDIRECTS = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_SEQUENCES = frozenset(
    {
        "program",
        "list",
        "compound_statement",
        "do_group",
        "if_statement",
        "elif_clause",
        "else_clause",
        "while_statement",
        "for_statement",
        "c_style_for_statement",
        "case_statement",
        "case_item",
        "negated_command",
        "variable_assignments",
        "ERROR",
    }
)
_STATEMENTS = _SEQUENCES | frozenset(
    {
        "command",
        "pipeline",
        "subshell",
        "redirected_statement",
        "function_definition",
        "variable_assignment",
        "declaration_command",
        "unset_command",
        "test_command",
    }
)
_BodyRunner = Callable[[Flow | None, list[Node]], Flow]  # (stdin, extra argument nodes) -> flow
_EMPTY_FLOW = Flow()  # never mutated
_TAINTS = FETCH | DECODE | SECRET
_ARGUMENTS = frozenset(
    {
        "string",
        "raw_string",
        "concatenation",
        "simple_expansion",
        "expansion",
        "number",
        "command_substitution",
        "process_substitution",
        "ansi_c_string",
        "arithmetic_expansion",
    }
)
_DANGEROUS_EXPANSION = re.compile(r"^\$\{!|@[PEAaKk]\}$|\\[0-7]{3}|\\x[0-9a-fA-F]")

# name -> (risk, command-valued, why)
_DANGEROUS_VARS: dict[str, tuple[RiskLevel, bool, str]] = {
    "PATH": ("medium", False, "changes which programs run"),
    "LD_PRELOAD": ("high", False, "loads a library into every program"),
    "LD_LIBRARY_PATH": ("high", False, "changes which libraries programs load"),
    "LD_AUDIT": ("high", False, "loads a library into every program"),
    "BASH_ENV": ("high", False, "makes every non-interactive bash run a file first"),
    "ENV": ("high", False, "makes every sh run a file first"),
    "PROMPT_COMMAND": ("medium", True, "runs a command at every prompt"),
    "PS4": ("medium", False, "is expanded (and can run commands) while tracing"),
    "IFS": ("medium", False, "changes how words are split"),
    "SHELLOPTS": ("medium", False, "changes shell options of every child bash"),
    "BASHOPTS": ("medium", False, "changes shell options of every child bash"),
    "HISTFILE": ("medium", False, "redirects or hides shell history"),
    "HISTSIZE": ("medium", False, "hides shell history"),
    "HISTFILESIZE": ("medium", False, "hides shell history"),
    "GIT_SSH_COMMAND": ("medium", True, "runs a command whenever git uses ssh"),
    "GIT_SSH": ("medium", True, "runs a program whenever git uses ssh"),
    "GIT_PAGER": ("medium", True, "runs a command as git's pager"),
    "PAGER": ("medium", True, "runs a command as the pager"),
    "MANPAGER": ("medium", True, "runs a command as man's pager"),
    "EDITOR": ("medium", True, "runs a command as the editor"),
    "VISUAL": ("medium", True, "runs a command as the editor"),
    "GIT_EDITOR": ("medium", True, "runs a command as git's editor"),
    "GIT_SEQUENCE_EDITOR": ("medium", True, "runs a command as git's editor"),
    "GIT_EXTERNAL_DIFF": ("medium", True, "runs a command for every git diff"),
    "GIT_ASKPASS": ("medium", True, "runs a program to ask for passwords"),
    "SSH_ASKPASS": ("medium", True, "runs a program to ask for passwords"),
    "SUDO_ASKPASS": ("medium", True, "runs a program to ask for passwords"),
    "GIT_PROXY_COMMAND": ("medium", True, "runs a command for git connections"),
    "LESSOPEN": ("medium", True, "runs a command whenever less opens a file"),
    "LESSCLOSE": ("medium", True, "runs a command whenever less closes a file"),
    "BROWSER": ("medium", True, "runs a command as the browser"),
    "GIT_DIR": ("medium", False, "points git at another repository"),
    "GIT_EXEC_PATH": ("medium", False, "changes which git programs run"),
    "GIT_TEMPLATE_DIR": ("medium", False, "changes hooks installed by git"),
    "GIT_CONFIG_GLOBAL": ("medium", False, "changes git configuration (pagers, hooks)"),
    "GIT_CONFIG_SYSTEM": ("medium", False, "changes git configuration (pagers, hooks)"),
    "GIT_CONFIG_PARAMETERS": ("medium", False, "changes git configuration (pagers, hooks)"),
    "PYTHONPATH": ("medium", False, "changes which Python code is imported"),
    "PYTHONSTARTUP": ("medium", False, "runs a Python file at start-up"),
    "PYTHONHOME": ("medium", False, "changes which Python runs"),
    "NODE_OPTIONS": ("medium", False, "can preload code into every node process"),
    "NODE_PATH": ("medium", False, "changes which node modules load"),
    "PERL5OPT": ("medium", False, "adds options (and code) to every perl"),
    "PERL5LIB": ("medium", False, "changes which perl modules load"),
    "RUBYOPT": ("medium", False, "adds options (and code) to every ruby"),
    "RUBYLIB": ("medium", False, "changes which ruby libraries load"),
    "JAVA_TOOL_OPTIONS": ("medium", False, "adds agents and options to every JVM"),
    "_JAVA_OPTIONS": ("medium", False, "adds agents and options to every JVM"),
}
_DANGEROUS_VAR_PREFIXES = ("DYLD_", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")


class Analysis:
    """What one command line contains."""

    __slots__ = ("hits", "records")

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.records: list[CommandRecord] = []


class _Pass:
    """One text being analysed: the line itself, or code nested inside it."""

    __slots__ = (
        "depth",
        "fallback",
        "multiline",
        "outer",
        "reported",
        "scope",
        "source_text",
        "src",
    )

    def __init__(
        self,
        src: bytes,
        outer: tuple[int, int] | None,
        depth: int,
        fallback_: bool,
        source_text: str = "",
        scope: Scope | None = None,
    ) -> None:
        self.src = src
        self.outer = outer  # span in the original line that nested findings point at
        self.depth = depth
        self.fallback = fallback_  # a fallback re-reading: no further fallback
        self.source_text = source_text
        self.scope = scope
        self.reported = False  # "unparseable" already reported for this text
        self.multiline = b"\n" in src[:-1]

    def text(self, node: Node) -> str:
        return self.src[node.start_byte : node.end_byte].decode("utf-8", "surrogatepass")

    def span(self, node: Node) -> tuple[int, int]:
        return self.outer or (node.start_byte, node.end_byte)


def _new_scope() -> Scope:
    return Scope(WORKSPACE, {"HOME": HOME, "IFS": DEFAULT_IFS}, set())


class _Analyzer:
    """Implements `invocation.Engine`."""

    def __init__(self, result: Analysis) -> None:
        self.result = result
        self.hits = result.hits
        self.records = result.records
        self.downloads: set[str] = set()

    # --- entry points ---------------------------------------------------------------------

    def source(
        self,
        text: str,
        scope: Scope,
        depth: int,
        outer: tuple[int, int] | None,
        stdin: Flow | None = None,
        fallback_: bool = False,
    ) -> Flow:
        src = text.encode("utf-8", "surrogatepass")
        root = parse(src)
        p = _Pass(src, outer, depth, fallback_, text, scope)
        if root.has_error or (b"$'" in src and misparsed_ansi_c(root, src)):
            self.unparseable(p)
        return self.sequence(root, scope, stdin, p)

    def plain(self, text: str) -> bool:
        """Analyse a plain line (see `_PLAIN_LEX`) without the parser. False, having done
        nothing, when the line is not that simple."""
        pipelines: list[list[list[Word]]] = [[[]]]
        pos = 0
        end = len(text)
        home = HOME
        for m in _PLAIN_LEX.finditer(text):
            if m.start() != pos:
                return False  # something the lexer does not know
            pos = m.end()
            kind = m.lastgroup
            if kind == "blank" or kind == "redir":
                continue
            piece = m.group()
            if kind == "op":
                if not pipelines[-1][-1]:
                    return False  # empty command: let the parser report it
                if piece == "|":
                    pipelines[-1].append([])
                else:
                    pipelines.append([[]])
                continue
            value = piece
            if "'" in piece or '"' in piece:
                value = _QUOTES.sub(_unquote, piece)
            if "~" in piece:
                if "=~" in piece or ":~" in piece:
                    return False  # tilde after = or : (assignment-like words): the parser path
                if piece[0] == "~":
                    if not (piece == "~" or piece.startswith("~/")):
                        return False  # ~user, ~+, ~-
                    value = home + value[1:]
                # elsewhere (HEAD~1) a tilde is an ordinary character
            current = pipelines[-1][-1]
            if not current and (
                piece in _RESERVED or "=" in piece.split("'", 1)[0].split('"', 1)[0]
            ):
                return False  # a reserved word or an assignment: not a plain command
            current.append(Word(value, None, m.start(), pos))
        if pos != end or not pipelines[-1][-1]:
            if pos != end or len(pipelines) == 1 or text.rstrip()[-1:] != ";":
                return False
            pipelines.pop()  # a trailing `;`
        scope = _new_scope()
        for pipeline in pipelines:
            flow: Flow | None = None
            for words in pipeline:
                start, stop = words[0].start, words[-1].end
                record = CommandRecord(len(self.records), text[start:stop], (start, stop))
                self.records.append(record)
                stage_scope = scope.child() if len(pipeline) > 1 else scope
                inv = Invocation(
                    self, record, words, stage_scope, flow, record.text, record.span, 0, self.hits
                )
                flow = self.finish(inv, flow)
        return True

    def unparseable(self, p: _Pass) -> None:
        """The tree cannot be trusted: confirm, and re-read the text in pieces (raise-only)."""
        if p.reported:
            return
        p.reported = True
        text = p.source_text
        self.line_hit(
            "unparseable",
            "confirm",
            "high",
            f"{short(text)}: the shell cannot parse this reliably, so it cannot be checked",
            text,
            p.outer or (0, len(p.src)),
        )
        if not p.fallback and p.scope is not None:
            self.fallback(text, p.scope, p.depth, p.outer)

    def fallback(self, text: str, scope: Scope, depth: int, outer: tuple[int, int] | None) -> None:
        """Unparseable input: re-read it in pieces; only blocks are kept (raise-only)."""
        for rule, why in fallback.scan(text):
            self.line_hit(rule, "block", "high", f"{short(text)}: {why}", text, outer)
        sub = Analysis()
        engine = _Analyzer(sub)
        for piece in fallback.readings(text):
            engine.source(
                piece, scope.child(), depth + 1, outer or (0, len(text.encode())), None, True
            )
        for h in sub.hits:
            if h.decision == "block":
                h.cmd = None
                self.hits.append(h)

    def line_hit(
        self,
        rule: str,
        decision: Decision,
        risk: RiskLevel,
        message: str,
        sub: str,
        span: tuple[int, int] | None,
    ) -> None:
        self.hits.append(Hit(rule, decision, risk, message, sub, span, None, False))

    # --- statements -----------------------------------------------------------------------

    def sequence(
        self, node: Node, scope: Scope, stdin: Flow | None, p: _Pass, depth: int = 0
    ) -> Flow:
        out = 0
        last: Flow | None = None
        children = node.children
        count = len(children)
        for i, child in enumerate(children):
            kind = child.type
            if kind in _STATEMENTS:
                background = i + 1 < count and children[i + 1].type == "&"
                if kind == "command" and not background and depth < MAX_NODES_DEPTH:
                    last = self.command(child, scope, stdin, p, depth + 1)
                else:
                    last = self.stmt(
                        child, scope.child() if background else scope, stdin, p, depth + 1
                    )
                out |= last.out
            elif not child.is_named or kind == "comment":
                continue
            else:
                out |= self.scan(child, scope, p, depth + 1)
        if last is None:
            return Flow(out)
        return Flow(out, last.literal, last.lang)

    def stmt(self, node: Node, scope: Scope, stdin: Flow | None, p: _Pass, depth: int = 0) -> Flow:
        if depth > MAX_NODES_DEPTH:
            text = p.text(node)
            self.line_hit(
                "nesting-limit",
                "confirm",
                "high",
                "the command is nested too deeply to check",
                text,
                p.span(node),
            )
            for rule, why in fallback.scan(text):
                self.line_hit(rule, "block", "high", f"{short(text)}: {why}", text, p.span(node))
            return Flow()
        kind = node.type
        if kind == "command":
            return self.command(node, scope, stdin, p, depth)
        if kind == "pipeline":
            return self.pipeline(node, scope, stdin, p, depth)
        if kind == "redirected_statement":
            return self.redirected(node, scope, stdin, p, depth)
        if kind == "subshell":
            return self.sequence(node, scope.child(), stdin, p, depth)
        if kind == "for_statement":
            return self.for_loop(node, scope, stdin, p, depth)
        if kind in _SEQUENCES:
            return self.sequence(node, scope, stdin, p, depth)
        if kind == "function_definition":
            self.function(node, scope, p, depth)
            return Flow()
        if kind == "variable_assignment":
            self.assignment(node, scope, p, depth, None)
            return Flow()
        if kind == "declaration_command":
            named = node.named_children
            if all(
                c.type == "word" and p.text(c).startswith("-") for c in named
            ) and "f" not in "".join(p.text(c) for c in named):
                text = p.text(node)
                self.line_hit(
                    "prints-environment",
                    "confirm",
                    "medium",
                    f"{short(text)}: prints shell variables, secrets included",
                    text,
                    p.span(node),
                )
                return Flow(SECRET)
            for child in named:
                if child.type == "variable_assignment":
                    self.assignment(child, scope, p, depth, None)
                else:
                    self.scan(child, scope, p, depth)
                    text = p.text(child)
                    if (
                        ("$(" in text or "`" in text)
                        and "[" in text
                        and child.type in ("raw_string", "string")
                    ):
                        # `declare 'a[$(cmd)]'`: the subscript is evaluated, its substitution runs
                        shim_text = p.text(node)
                        self.line_hit(
                            "subscript-code",
                            "confirm",
                            "medium",
                            f"{short(shim_text)}: a quoted subscript here runs a command",
                            shim_text,
                            p.span(node),
                        )
                        self.source(text[1:-1], scope.child(), p.depth + 1, p.span(node))
            return Flow()
        return Flow(self.scan_children(node, scope, p, depth))

    def for_loop(self, node: Node, scope: Scope, stdin: Flow | None, p: _Pass, depth: int) -> Flow:
        """``for x in WORDS; do BODY; done``: x carries what the words carry (downloads...)."""
        variable = node.child_by_field_name("variable")
        body = node.child_by_field_name("body")
        flow = 0
        for value in node.children_by_field_name("value"):
            if value.child_count:
                flow |= self.scan(value, scope, p, depth + 1)
        if variable is not None:
            scope.set_var(p.text(variable), None, flow & _TAINTS)
        if body is None:
            return Flow(flow)
        return self.stmt(body, scope, stdin, p, depth + 1)

    def scan_children(self, node: Node, scope: Scope, p: _Pass, depth: int) -> int:
        out = 0
        for child in node.children:
            if child.child_count:
                out |= self.scan(child, scope, p, depth + 1)
        return out

    def scan(self, node: Node, scope: Scope, p: _Pass, depth: int = 0) -> int:
        """Walk a non-statement node: run substitutions, check expansions; return flow flags."""
        if node.child_count == 0:
            return 0
        kind = node.type
        if kind in SUBSTITUTIONS:
            return self.sequence(node, scope.child(), None, p, depth).out
        if kind in _STATEMENTS:
            return self.stmt(node, scope, None, p, depth).out
        if kind == "expansion" and _DANGEROUS_EXPANSION.search(p.text(node)):
            self.line_hit(
                "expansion-trick",
                "confirm",
                "medium",
                f"{short(p.text(node))}: this parameter expansion can run or hide code",
                p.text(node),
                p.span(node),
            )
        if depth > MAX_NODES_DEPTH:
            return 0
        return self.scan_children(node, scope, p, depth)

    def pipeline(self, node: Node, scope: Scope, stdin: Flow | None, p: _Pass, depth: int) -> Flow:
        stages = [c for c in node.children if c.is_named and c.type != "comment"]
        after: list[Node] = []
        if stages and stages[-1].type == "list":
            # tree-sitter-bash 0.25.1 reads `a | b | c && d` as `a | (b | c && d)`; bash reads
            # `(a | b | c) && d`. Regroup: the list's first element continues the pipeline, the
            # rest runs afterwards in this shell.
            first, after = _split_list(stages.pop())
            if first.type == "pipeline":
                stages.extend(c for c in first.children if c.is_named and c.type != "comment")
            else:
                stages.append(first)
        flow = stdin
        for child in stages:
            if child.type in _STATEMENTS:
                # `a && b 2>&1 | c` comes out as `(a && b 2>&1) | c`: bash runs `a` in this
                # shell, so a misgrouped list keeps this shell's scope (its cd counts later on).
                misgrouped = child.type == "list" or (
                    child.type == "redirected_statement"
                    and child.named_child_count > 0
                    and child.named_children[0].type == "list"
                )
                flow = self.stmt(child, scope if misgrouped else scope.child(), flow, p, depth + 1)
            else:
                self.scan(child, scope, p, depth + 1)
        for statement in after:
            flow = self.stmt(statement, scope, None, p, depth + 1)
        return flow or Flow()

    # --- simple commands ------------------------------------------------------------------

    def substitution_word(
        self, node: Node, scope: Scope, p: _Pass, depth: int
    ) -> list[Word] | None:
        """``$(cmd)`` or ``"$(cmd)"`` as a whole word: its value is cmd's output when known."""
        quoted = False
        sub = node
        if node.type == "string":
            named = node.named_children
            if len(named) != 1 or named[0].type != "command_substitution":
                return None
            sub = named[0]
            quoted = True
        elif node.type != "command_substitution":
            return None
        flow = self.sequence(sub, scope.child(), None, p, depth + 1)
        literal = flow.literal
        value = literal.rstrip("\n") if literal is not None else None
        fields: list[str | None]
        if value is not None and not quoted:
            ifs = scope.vars.get("IFS", DEFAULT_IFS)
            fields = list(
                split_fields("\x00" + value + "\x01", DEFAULT_IFS if ifs is None else ifs)
            )
        else:
            fields = [value]
        out: list[Word] = []
        for f in fields:
            w = Word(f, node, node.start_byte, node.end_byte)
            w.complex = True
            w.quoted = quoted
            w.sub_flow = flow.out
            out.append(w)
        return out

    def words(self, nodes: list[Node], scope: Scope, p: _Pass, depth: int) -> list[Word]:
        out: list[Word] = []
        src = p.src
        last_end = -1
        for n in nodes:
            kind = n.type
            if n.start_byte == last_end and out:
                # tree-sitter-bash 0.25.1 splits `'r'\m` and `""\a` into two nodes with nothing
                # between them; bash reads one word.
                self.glue(out, n, scope, p, depth)
                last_end = n.end_byte
                continue
            last_end = n.end_byte
            if kind == "$":
                out.append(Word("$", n, n.start_byte, n.end_byte))
                continue
            if kind == "word":
                start, end = n.start_byte, n.end_byte
                raw = src[start:end].decode("utf-8", "surrogatepass")
                if "\\" not in raw and "~" not in raw:
                    out.append(Word(raw, n, start, end))
                    continue
            elif kind == "raw_string":
                start, end = n.start_byte, n.end_byte
                w = Word(src[start + 1 : end - 1].decode("utf-8", "surrogatepass"), n, start, end)
                w.quoted = True
                out.append(w)
                continue
            elif kind == "string" and all(c.type == "string_content" for c in n.named_children):
                start, end = n.start_byte, n.end_byte
                raw = src[start + 1 : end - 1].decode("utf-8", "surrogatepass")
                w = Word(unescape_double_quoted(raw), n, start, end)
                w.quoted = True
                out.append(w)
                continue
            if kind == "command_substitution" or kind == "string":
                subst = self.substitution_word(n, scope, p, depth)
                if subst is not None:
                    out.extend(subst)
                    continue
            w = resolve_word(n, p.src, scope.vars)
            if w.complex:
                w.sub_flow = self.scan(n, scope, p, depth + 1)
                if w.vars and scope.taint:
                    self.taint_of(w, scope)
            if w.vanish:
                continue
            if w.alts:
                for alt in w.alts:
                    clone = Word(alt, w.node, w.start, w.end)
                    clone.vars = w.vars
                    clone.sub_flow = w.sub_flow
                    out.append(clone)
            else:
                out.append(w)
        return out

    @staticmethod
    def taint_of(w: Word, scope: Scope) -> None:
        """Variables holding downloaded, decoded or secret data carry that into the word."""
        for name in w.vars:
            flow = scope.taint.get(name)
            if flow:
                w.sub_flow |= flow

    def glue(self, out: list[Word], n: Node, scope: Scope, p: _Pass, depth: int) -> None:
        """Append node ``n`` to the word before it (they touch, so bash reads one word)."""
        prev = out.pop()
        if n.type == "$":
            part = Word("$", n, n.start_byte, n.end_byte)
        else:
            part = resolve_word(n, p.src, scope.vars)
        if part.complex:
            part.sub_flow = self.scan(n, scope, p, depth + 1)
        value = None if prev.value is None or part.value is None else prev.value + part.value
        glued = Word(value, prev.node, prev.start, n.end_byte)
        glued.vars = prev.vars + part.vars
        glued.sub_flow = prev.sub_flow | part.sub_flow
        glued.complex = True
        out.append(glued)

    def command(
        self,
        node: Node,
        scope: Scope,
        stdin: Flow | None,
        p: _Pass,
        depth: int,
        extra: list[Node] | None = None,
    ) -> Flow:
        start, end = node.start_byte, node.end_byte
        if start == end:
            return _EMPTY_FLOW  # a MISSING node in a tree with errors (reported as unparseable)
        nodes: list[Node] = []  # the program word, then the arguments
        assignments: list[Node] | None = None
        own_redirects: list[Node] | None = None
        children = node.children
        if p.multiline and b"\n" in p.src[start:end] and _newline_between_words(children, p.src):
            # tree-sitter-bash 0.25.1 sometimes runs a command across a newline (`ls -la\n\\rm`,
            # `a | b | c\nd < f`); bash ends the command there.
            self.unparseable(p)
        for child in children:
            kind = child.type
            if kind == "command_name":
                nodes.insert(0, child.named_children[0] if child.named_child_count else child)
            elif kind == "word" or kind in _ARGUMENTS:
                nodes.append(child)
            elif kind == "variable_assignment":
                (assignments := assignments or []).append(child)
            elif kind in _REDIRECTS:
                (own_redirects := own_redirects or []).append(child)
            elif child.is_named:
                if kind != "comment":
                    nodes.append(child)
            elif kind == "$" and child.end_byte - child.start_byte == 2:
                nodes.append(child)  # `''\$`: an escaped dollar the grammar leaves unnamed
        if extra:
            nodes.extend(extra)
        text = p.src[start:end].decode("utf-8", "surrogatepass")
        span = p.outer or (start, end)
        if own_redirects:
            # `cat <<< x`, `>out echo hi`: same handling as a redirected statement
            return self.with_redirects(
                own_redirects,
                text,
                span,
                scope,
                stdin,
                p,
                depth,
                lambda s, more: self.command_body(
                    nodes + more, assignments, scope, s, p, depth, text, span
                ),
            )
        return self.command_body(nodes, assignments, scope, stdin, p, depth, text, span)

    def command_body(
        self,
        nodes: list[Node],
        assignments: list[Node] | None,
        scope: Scope,
        stdin: Flow | None,
        p: _Pass,
        depth: int,
        text: str,
        span: tuple[int, int],
    ) -> Flow:
        records = self.records
        record = CommandRecord(len(records), text, span)
        records.append(record)
        words = self.words(nodes, scope, p, depth)
        inv = Invocation(self, record, words, scope, stdin, text, span, p.depth, self.hits)
        if p.outer is not None:
            inv.outer = p.outer
        if assignments:
            for a in assignments:
                self.assignment(a, scope, p, depth, inv)
        if not words:
            record.positive = True  # assignments only
            return _EMPTY_FLOW
        return self.finish(inv, stdin)

    def finish(self, inv: Invocation, stdin: Flow | None) -> Flow:
        """Judge the program of ``inv`` and follow its data flow; the flow it writes."""
        self.invoke(inv)
        if inv.exec_lang is not None or inv.network:
            self.after(inv)
        inv.record.positive = inv.positive
        if stdin is None:
            if inv.out == 0 and inv.literal is None:
                return _EMPTY_FLOW
            return Flow(inv.out, inv.literal)
        out = inv.out | stdin.out
        if inv.passthrough:
            return Flow(out, inv.literal if inv.literal is not None else stdin.literal, stdin.lang)
        return Flow(out, inv.literal)

    def invoke(self, inv: Invocation) -> None:
        words = inv.words
        record = inv.record
        for _ in range(MAX_PEEL):
            if inv.start >= len(words):
                inv.positive = True
                return
            w0 = words[inv.start]
            value = w0.value
            if value is None:
                self.dynamic_command(inv)
                return
            level = tuple([w.value if w.value is not None else DYNAMIC for w in words[inv.start :]])
            record.levels.append(level)
            record.argv = level
            qualified = "/" in value
            inv.name = basename(value) if qualified else value
            if qualified:
                directory = value.rstrip("/").rsplit("/", 1)[0] or "/"
                record.trusted = directory in TRUSTED_BIN_DIRS
                if self.downloaded(inv.target(w0).path):
                    inv.block(
                        "download-then-execute", f"runs {value}, downloaded earlier in this command"
                    )
                    return
            else:
                record.trusted = True
                if value in inv.scope.functions:
                    inv.positive = True  # the definition was judged where it was written
                    return
            nxt = unwrap.peel(inv)
            if nxt is None:
                self.program(inv, value)
                return
            if nxt == unwrap.DONE:
                return
            inv.start = nxt
        inv.confirm("wrapper-limit", "too many nested wrappers to check", "high", lowerable=False)

    def program(self, inv: Invocation, value: str) -> None:
        rule = rules.lookup(inv.name)
        if rule is None:
            if value == "":
                inv.confirm("unknown-command", "Unknown command '': an empty program name")
                return
            inv.confirm(
                "unknown-command",
                f"Unknown command '{inv.name}': the gate does not know what it does",
            )
            rules.generic_prefix(inv)
            return
        rule(inv)
        if not inv.record.trusted and inv.positive:
            inv.positive = False
            inv.confirm(
                "untrusted-program-path",
                f"{value} is not the system {inv.name}; a program in the workspace can do anything",
            )

    def dynamic_command(self, inv: Invocation) -> None:
        w0 = inv.program
        inv.record.levels.append(
            tuple(w.value if w.value is not None else DYNAMIC for w in inv.words[inv.start :])
        )
        if w0.sub_flow & (FETCH | DECODE):
            inv.block("fetch-to-exec", "runs a command produced by a download or decoder")
            return
        if rules.destructive_shape(inv):
            inv.block(
                "dynamic-destructive",
                "a program known only at run time with a destructive "
                "argument shape (recursive delete of / or ~)",
            )
            return
        inv.confirm(
            "dynamic-command", "the program to run is only known at run time", lowerable=False
        )

    def after(self, inv: Invocation) -> None:
        """Data-flow checks once the program is known."""
        if inv.exec_lang is None and not inv.network:
            return
        stdin = inv.stdin
        if inv.exec_lang is not None:
            lang = inv.exec_lang
            inv.out |= SHELL
            if stdin is not None and stdin.out & (FETCH | DECODE):
                inv.block(
                    "fetch-to-exec",
                    f"runs {'code' if lang != 'shell' else 'a script'} piped from "
                    "a download or decoder",
                )
            elif stdin is not None and stdin.literal is not None:
                if lang != "shell":
                    inv.confirm("inline-code", f"runs inline {lang} code", lowerable=False)
                self.nested_script(inv, stdin.literal, None, lang)
                inv.positive = lang == "shell"
            elif stdin is None:
                inv.confirm(
                    "interactive-interpreter",
                    f"{inv.name} reads commands from the terminal",
                    lowerable=False,
                )
            else:
                inv.confirm(
                    "executes-stdin",
                    f"{inv.name} runs whatever its input contains",
                    lowerable=False,
                )
        if not inv.network:
            return
        if inv.network:
            for w in inv.args:
                if w.sub_flow & SECRET or any(is_secret_var(v) for v in w.vars):
                    inv.block(
                        "secret-to-network", f"sends a secret ({_word_text(w)}) over the network"
                    )
                    break
            if stdin is not None and stdin.out & SECRET:
                inv.block(
                    "secret-to-network",
                    "sends secrets piped from an earlier stage over the network",
                )
            if stdin is not None and stdin.out & SHELL:
                inv.block(
                    "reverse-shell",
                    "connects a shell's input or output to the network (remote shell)",
                )

    # --- assignments, functions -------------------------------------------------------------

    def assignment(
        self, node: Node, scope: Scope, p: _Pass, depth: int, inv: Invocation | None
    ) -> None:
        name_node = node.child_by_field_name("name")
        value_node = node.child_by_field_name("value")
        name = p.text(name_node) if name_node is not None else ""
        value: str | None = ""
        word: Word | None = None
        if value_node is not None:
            subst = None
            if value_node.type in ("command_substitution", "string"):
                subst = self.substitution_word(value_node, scope, p, depth)
            if subst:
                word = subst[0]
                if len(subst) > 1:
                    word.value = " ".join(w.value or "" for w in subst)
            else:
                word = resolve_word(value_node, p.src, scope.vars)
                if word.complex or value_node.child_count:
                    word.sub_flow = self.scan(value_node, scope, p, depth + 1)
                    self.taint_of(word, scope)
            value = word.value
        if name_node is not None and name_node.type == "subscript":
            name = p.text(name_node).split("[", 1)[0]
            value = None
        if inv is None:
            scope.set_var(name, value, word.sub_flow & _TAINTS if word is not None else 0)
            if name == "PWD":
                scope.cwd = resolve(value, scope.cwd).path if value else None
            if name in _DANGEROUS_VARS or name.startswith(_DANGEROUS_VAR_PREFIXES):
                text = p.text(node)
                span = p.span(node)
                shim = Invocation(
                    self,
                    CommandRecord(-1, text, span),
                    [],
                    scope,
                    None,
                    text,
                    span,
                    p.depth,
                    self.hits,
                )
                shim.outer = p.outer
                self.check_assignment(shim, name, value, word)
            return
        self.check_assignment(inv, name, value, word)

    def check_assignment(
        self, inv: Invocation, name: str, value: str | None, word: Word | None
    ) -> None:
        danger = _DANGEROUS_VARS.get(name)
        if danger is not None:
            risk, command_valued, why = danger
        elif name.startswith(_DANGEROUS_VAR_PREFIXES):
            risk = "high" if name.startswith("DYLD_") else "medium"
            command_valued, why = False, "changes how programs load"
        else:
            return
        self._hit(inv, "environment-override", "confirm", risk, f"sets {name}, which {why}")
        if command_valued:
            if value is None:
                if word is not None and word.sub_flow & (FETCH | DECODE):
                    self._hit(
                        inv, "fetch-to-exec", "block", "high", f"{name} runs code from a download"
                    )
            elif value:
                self.nested_script(inv, value, word)

    def _hit(
        self, inv: Invocation, rule: str, decision: Decision, risk: RiskLevel, why: str
    ) -> None:
        """A hit not about the program itself (never lowered by an allowlist entry)."""
        cmd = inv.record.index if inv.record.index >= 0 else None
        self.hits.append(
            Hit(rule, decision, risk, f"{short(inv.sub)}: {why}", inv.sub, inv.span, cmd, False)
        )

    def function(self, node: Node, scope: Scope, p: _Pass, depth: int) -> None:
        name_node = node.child_by_field_name("name")
        body = node.child_by_field_name("body")
        name = p.text(name_node) if name_node is not None else ""
        text = p.text(node)
        span = p.span(node)
        scope.add_function(name)
        if body is not None and _fork_bomb(body, name, p):
            self.line_hit(
                "fork-bomb",
                "block",
                "high",
                f"{short(text)}: a function that calls itself in a pipe or in the background "
                "(fork bomb)",
                text,
                span,
            )
        self.line_hit(
            "function-definition",
            "confirm",
            "medium",
            f"{short(text)}: defines a shell function, which can shadow any command",
            text,
            span,
        )
        if body is not None:
            self.stmt(body, scope.child(), None, p, depth + 1)

    # --- redirections ---------------------------------------------------------------------

    def redirected(
        self, node: Node, scope: Scope, stdin: Flow | None, p: _Pass, depth: int
    ) -> Flow:
        body: Node | None = None
        redirects: list[Node] = []
        for child in node.children:
            if child.type in _REDIRECTS:
                redirects.append(child)
            elif child.is_named and child.type != "comment" and body is None:
                body = child
        text = p.text(node)
        span = p.span(node)

        def run_body(s: Flow | None, more: list[Node]) -> Flow:
            if body is None:
                return Flow()
            if more:
                if body.type == "command":
                    return self.command(body, scope, s, p, depth + 1, more)
                self.unparseable(p)  # `{ a; } > f b`: bash rejects it
            return self.stmt(body, scope, s, p, depth + 1)

        return self.with_redirects(redirects, text, span, scope, stdin, p, depth, run_body)

    def with_redirects(
        self,
        redirects: list[Node],
        text: str,
        span: tuple[int, int],
        scope: Scope,
        stdin: Flow | None,
        p: _Pass,
        depth: int,
        run: _BodyRunner,
    ) -> Flow:
        new_stdin = stdin
        outputs: list[Word] = []
        stdout_taken = False
        continuations: list[Node] = []
        extra: list[Node] = []
        for r in redirects:
            kind = r.type
            if kind == "herestring_redirect":
                nodes = [c for c in r.named_children]
                if len(nodes) > 1:  # `cat <<< x y`: y is an argument of cat
                    extra.extend(nodes[1:])
                    nodes = nodes[:1]
                words = self.words(nodes, scope, p, depth)
                flags = 0
                for w in words:
                    flags |= w.sub_flow
                    if any(is_secret_var(v) for v in w.vars):
                        flags |= SECRET
                        self.line_hit(
                            "secret-print",
                            "confirm",
                            "medium",
                            f"{short(text)}: feeds a secret variable to a command (may print it)",
                            text,
                            span,
                        )
                value = words[0].value if words else ""
                new_stdin = Flow(flags, None if value is None else value + "\n")
                continue
            if kind == "heredoc_redirect":
                new_stdin = self.heredoc(r, scope, p, depth, continuations, redirects)
                continue
            op = ""
            fd = ""
            dest: Node | None = None
            more: list[Node] = []
            for c in r.children:
                if c.type == "file_descriptor":
                    fd = p.text(c)
                elif not c.is_named:
                    op += c.type
                elif dest is None:
                    dest = c
                elif c.type != "comment":
                    more.append(c)  # `cmd > f -x y`: -x and y are arguments of cmd
            if more:
                if _newline_between_words([dest, *more] if dest is not None else more, p.src):
                    self.unparseable(p)
                extra.extend(more)
            if dest is None:
                continue
            if (op in (">&", "<&", ">&-", "<&-") and dest.type == "number") or p.text(dest) == "-":
                continue
            words = self.words([dest], scope, p, depth)
            if not words:
                continue
            w = words[0]
            if "<" in op and ">" not in op:
                new_stdin = self.input_file(w, text, span, scope, dest)
            else:
                if dest.type == "process_substitution":
                    continue  # `> >(cmd)`: the body was walked as a command
                outputs.append(w)
                if fd in ("", "1") or op.startswith("&"):
                    stdout_taken = True
        flow = run(new_stdin, extra)
        for w in outputs:
            self.judge_redirect(w, text, span, scope, flow)
        if stdout_taken:
            flow = Flow(0)
        for c in continuations:
            if c.type == "pipeline":
                flow = self.pipeline(c, scope, flow, p, depth + 1)
            elif c.type in _STATEMENTS:
                flow = self.stmt(c, scope, None, p, depth + 1)
        return flow

    def heredoc(
        self,
        r: Node,
        scope: Scope,
        p: _Pass,
        depth: int,
        continuations: list[Node],
        redirects: list[Node],
    ) -> Flow:
        quoted = False
        strip_tabs = False
        body_text = ""
        flags = 0
        for c in r.children:
            kind = c.type
            if kind == "heredoc_start":
                start = p.text(c)
                quoted = any(q in start for q in "'\"\\")
            elif kind == "<<-":
                strip_tabs = True
            elif kind == "heredoc_body":
                body_text = p.text(c)
                if not quoted:
                    flags |= self.scan(c, scope, p, depth + 1)
            elif kind == "file_redirect":
                redirects.append(c)
            elif kind in ("pipeline", "list", "command", "redirected_statement", "subshell"):
                continuations.append(c)
            elif c.is_named and kind not in ("heredoc_end", "heredoc_content"):
                flags |= self.scan(c, scope, p, depth + 1)
        if strip_tabs:
            body_text = "\n".join(line.lstrip("\t") for line in body_text.split("\n"))
        return Flow(flags, body_text)

    def input_file(
        self, w: Word, text: str, span: tuple[int, int], scope: Scope, dest: Node
    ) -> Flow:
        if dest.type == "process_substitution":
            return Flow(w.sub_flow)
        if w.value is None:
            return Flow(w.sub_flow)
        target = resolve(w.value, scope.cwd)
        path = target.path or ""
        if is_network_device(path):
            self.line_hit(
                "network-device",
                "block",
                "high",
                f"{short(text)}: reads from a raw network connection ({w.value})",
                text,
                span,
            )
            return Flow(FETCH)
        if is_secret_path(w.value, scope.cwd):
            self.line_hit(
                "secret-read",
                "confirm",
                "high",
                f"{short(text)}: reads {w.value}, which holds secrets",
                text,
                span,
            )
            return Flow(SECRET)
        if self.downloaded(target.path):
            return Flow(FETCH)
        return Flow(0)

    def judge_redirect(
        self, w: Word, text: str, span: tuple[int, int], scope: Scope, flow: Flow
    ) -> None:
        value = w.value
        if value is None:
            self.line_hit(
                "redirect-dynamic",
                "confirm",
                "medium",
                f"{short(text)}: writes to a file named only at run time",
                text,
                span,
            )
            return
        target = resolve(value, scope.cwd)
        path = target.path
        if path is not None and path.startswith("/dev/"):
            if is_benign_device(path):
                return
            if is_network_device(path):
                self.line_hit(
                    "network-device",
                    "block",
                    "high",
                    f"{short(text)}: sends output to a raw network connection ({value})",
                    text,
                    span,
                )
                return
            self.line_hit(
                "device-write",
                "block",
                "high",
                f"{short(text)}: writes directly to the device {value}",
                text,
                span,
            )
            return
        if flow.out & (FETCH | DECODE) and path is not None:
            self.downloads.add(path)  # downloaded or decoded: running it later runs unseen code
        if path is not None and is_protected_write(path):
            self.line_hit(
                "protected-write",
                "block",
                "high",
                f"{short(text)}: writes to {value} (shell start-up, ssh or system file)",
                text,
                span,
            )
            return
        if is_git_hooks(path or value):
            self.line_hit(
                "git-hooks-write",
                "confirm",
                "high",
                f"{short(text)}: writes {value}, which git runs as code",
                text,
                span,
            )
            if flow.literal is not None:
                sub = Analysis()
                _Analyzer(sub).source(flow.literal, scope.child(), MAX_DEPTH - 1, span)
                for h in sub.hits:
                    if h.decision == "block":
                        h.cmd = None
                        self.hits.append(h)
            return
        self.line_hit(
            "redirect-write", "confirm", "medium", f"{short(text)}: writes to {value}", text, span
        )

    # --- Engine ---------------------------------------------------------------------------

    def nested_script(
        self, inv: Invocation, text: str, word: Word | None, lang: str = "shell"
    ) -> None:
        if inv.depth >= MAX_DEPTH:
            self._hit(inv, "nesting-limit", "confirm", "high", "nested code is too deep to check")
            for rule, why in fallback.scan(text):
                self._hit(inv, rule, "block", "high", why)
            return
        outer = inv.outer or (
            (word.start, word.end) if word is not None and word.node is not None else inv.span
        )
        if lang == "shell":
            scope = inv.scope.child()
            scope.cwd = inv.cwd
            self.source(text, scope, inv.depth + 1, outer)
            return
        if lang == "opaque":
            return
        for effect in inline.code_effects(text, lang):
            kind = effect.kind
            if kind == "shell":
                scope = inv.scope.child()
                scope.cwd = inv.cwd
                self.source(effect.value, scope, inv.depth + 1, outer)
            elif kind == "block":
                self._hit(inv, effect.rule, "block", "high", effect.value)
            elif kind == "confirm":
                self._hit(inv, effect.rule, "confirm", "medium", effect.value)
            elif kind == "delete":
                category = classify_delete(resolve(effect.value, inv.cwd), effect.value)
                if category in ("protected",) or (category == "catastrophic" and effect.recursive):
                    self._hit(
                        inv, "inline-delete", "block", "high", f"{lang} code deletes {effect.value}"
                    )
                else:
                    self._hit(
                        inv,
                        "inline-delete",
                        "confirm",
                        "high" if effect.recursive else "medium",
                        f"{lang} code deletes {effect.value}",
                    )
            elif kind == "write":
                self.judge_write(inv, Word.synthetic(effect.value), f"{lang} code")

    def sub_invocation(self, inv: Invocation, words: list[Word]) -> None:
        text = " ".join(w.value if w.value is not None else "…" for w in words)
        record = CommandRecord(len(self.records), text, inv.span)
        self.records.append(record)
        sub = Invocation(
            self, record, words, inv.scope, None, text, inv.span, inv.depth + 1, self.hits
        )
        sub.outer = inv.outer
        sub.cwd = inv.cwd
        sub.extra_unknown = True
        self.invoke(sub)
        self.after(sub)
        record.positive = sub.positive

    def judge_write(self, inv: Invocation, word: Word, how: str) -> None:
        value = word.value
        if value is None:
            return
        path = resolve(value, inv.cwd).path
        if path is None:
            return
        if path.startswith("/dev/"):
            if is_network_device(path):
                self._hit(
                    inv,
                    "network-device",
                    "block",
                    "high",
                    f"{how} writes to a network connection ({value})",
                )
            elif not is_benign_device(path):
                self._hit(
                    inv,
                    "device-write",
                    "block",
                    "high",
                    f"{how} writes directly to the device {value}",
                )
            return
        if is_protected_write(path):
            self._hit(
                inv,
                "protected-write",
                "block",
                "high",
                f"{how} writes to {value} (shell start-up, ssh or system file)",
            )
        elif is_git_hooks(path):
            self._hit(
                inv,
                "git-hooks-write",
                "confirm",
                "high",
                f"{how} writes {value}, which git runs as code",
            )

    def downloaded(self, path: str | None) -> bool:
        return path is not None and path in self.downloads

    def record_download(self, inv: Invocation, word: Word | None) -> None:
        if word is None or word.value is None:
            return
        path = resolve(word.value, inv.cwd).path
        if path is not None:
            self.downloads.add(path)


def _newline_between_words(children: list[Node], src: bytes) -> bool:
    """A raw newline (not escaped, not inside quotes or a substitution) between or at the start
    of the words of one command: the grammar merged two lines into one command."""
    prev_end = -1
    for child in children:
        start = child.start_byte
        if prev_end >= 0:
            gap = src[prev_end:start]
            if b"\n" in gap and gap.replace(b"\\\n", b"").strip(b" \t") != b"":
                return True
        if child.type == "word":
            text = src[start : child.end_byte]
            if text.startswith(b"\n") or (b"\n" in text and b"\\\n" not in text):
                return True
        prev_end = child.end_byte
    return False


def _unquote(m: re.Match[str]) -> str:
    return m.group(1) if m.group(1) is not None else m.group(2)


def _split_list(node: Node) -> tuple[Node, list[Node]]:
    """A ``list`` node's first element and the statements after it, in order."""
    rest: list[Node] = []
    while node.type == "list":
        named = [c for c in node.children if c.is_named and c.type != "comment"]
        if not named:
            break
        rest[:0] = named[1:]
        node = named[0]
    return node, rest


def _word_text(w: Word) -> str:
    if w.value is not None:
        return w.value
    if w.vars:
        return "$" + w.vars[0]
    return "a substitution"


def _fork_bomb(body: Node, name: str, p: _Pass) -> bool:
    """The body calls ``name`` inside a pipeline or in the background."""
    stack: list[tuple[Node, bool]] = [(body, False)]
    while stack:
        node, in_pipe = stack.pop()
        kind = node.type
        if kind == "command":
            cname = node.child_by_field_name("name")
            if cname is not None and p.text(cname) == name:
                nxt = node.next_sibling
                if in_pipe or (nxt is not None and nxt.type == "&"):
                    return True
        children = node.children
        for i, child in enumerate(children):
            if child.type == "&" and i > 0 and children[i - 1].type in ("pipeline", "command"):
                prev = children[i - 1]
                if _calls(prev, name, p):
                    return True
            stack.append((child, in_pipe or kind == "pipeline"))
    return False


def _calls(node: Node, name: str, p: _Pass) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == "command":
            cname = n.child_by_field_name("name")
            if cname is not None and p.text(cname) == name:
                return True
        stack.extend(n.children)
    return False


# A plain line: words made of characters bash never treats specially, plus single-quoted text and
# double-quoted text without `$`, backquotes or backslashes, separated by blanks and joined by
# `|`, `&&`, `||`, `;`, with at most fd duplications and /dev/null redirections; `~` only at the
# start of a word. Bash does nothing to such a line but split it and remove the quotes (globs are
# taken literally, as on the parser path), so it needs no parser.
_PLAIN_LEX = re.compile(
    r"(?P<blank>[ \t]+)"
    r"|(?P<op>\|\||&&|[|;])"
    r"|(?P<redir>(?:[0-9]?>&[0-9]|[0-9&]?>>?[ \t]*/dev/null)(?=[ \t|;]|$))"
    r"|(?P<word>(?:[A-Za-z0-9_./:=,+@%*?\[\]~^-]|'[^'\n]*'|\"[^\"$`\\\n!]*\")+)"
)
_QUOTES = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_RESERVED = frozenset(
    {
        "[[",
        "]]",
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "for",
        "while",
        "until",
        "do",
        "done",
        "case",
        "esac",
        "in",
        "function",
        "select",
        "time",
        "coproc",
    }
)


def analyze(command: str, *, fast: bool = True) -> Analysis:
    """Analyse one command line (the caller has done the raw-text checks). ``fast=False`` skips
    the parser-free path for plain lines (tests compare both)."""
    result = Analysis()
    engine = _Analyzer(result)
    if fast and command.isascii() and "\n" not in command and engine.plain(command):
        return result
    engine.source(command, _new_scope(), 0, None)
    if "\\\n" in command:
        # bash removes backslash-newline before splitting words (`r\<newline>m` is `rm`);
        # tree-sitter-bash 0.25.1 splits there. Read the joined text too; it can only add.
        joined = command.replace("\\\n", "")
        extra = Analysis()
        _Analyzer(extra).source(
            joined, _new_scope(), 0, (0, len(command.encode("utf-8", "surrogatepass")))
        )
        for h in extra.hits:
            if h.decision != "allow":
                h.cmd = None
                h.lowerable = False
                result.hits.append(h)
    return result


def analyze_oversize(command: str) -> Analysis:
    """Too long to parse: only the raise-only scans run."""
    result = Analysis()
    engine = _Analyzer(result)
    for rule, why in fallback.scan(command):
        engine.line_hit(rule, "block", "high", f"{short(command)}: {why}", command, None)
    return result


def resolved_words(text: str) -> list[str | None]:
    """The words of the first simple command of ``text`` as the gate resolves them (quotes,
    escapes, touching nodes glued, field splitting). For tests and debugging."""
    src = (text if text.endswith("\n") else text + "\n").encode("utf-8", "surrogatepass")
    root = parse(src)
    stack = [root]
    while stack:
        node = stack.pop(0)
        if node.type == "command":
            nodes = [
                c.named_children[0] if c.type == "command_name" else c
                for c in node.children
                if (c.is_named and c.type not in ("variable_assignment", "comment", *_REDIRECTS))
                or (c.type == "$" and c.end_byte - c.start_byte == 2)
            ]
            engine = _Analyzer(Analysis())
            return [
                w.value for w in engine.words(nodes, _new_scope(), _Pass(src, None, 0, False), 0)
            ]
        stack.extend(node.children)
    return []
