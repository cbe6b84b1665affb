"""Grammar shapes the gate depends on, pinned to tree-sitter-bash 0.25.1.

An upgrade that renames or reshapes any of these nodes must fail here first, loudly, instead of
silently turning the gate's walk into a no-op (command-safety.md §4.5).
"""

from __future__ import annotations

from importlib.metadata import version

import pytest
from tree_sitter import Node

from oropendola_ls.safety.shell_ast import LANGUAGE, get_parser, parse


def sexp(text: str) -> str:
    return str(parse(text.encode()))


def first(node: Node, kind: str) -> Node:
    stack = [node]
    while stack:
        n = stack.pop(0)
        if n.type == kind:
            return n
        stack.extend(n.children)
    raise AssertionError(f"no {kind} in {node}")


def test_pinned_versions() -> None:
    assert version("tree-sitter-bash") == "0.25.1"
    assert LANGUAGE.abi_version >= 14


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("git status", "(program (command name: (command_name (word)) argument: (word)))"),
        (
            "rm -rf /",
            "(program (command name: (command_name (word)) argument: (word) argument: (word)))",
        ),
        (
            "a | b",
            "(program (pipeline (command name: (command_name (word))) "
            "(command name: (command_name (word)))))",
        ),
        (
            "a && b",
            "(program (list (command name: (command_name (word))) "
            "(command name: (command_name (word)))))",
        ),
        ("(a)", "(program (subshell (command name: (command_name (word)))))"),
        ("{ a; }", "(program (compound_statement (command name: (command_name (word)))))"),
        ("! a", "(program (negated_command (command name: (command_name (word)))))"),
        (
            "a=$(b)",
            "(program (variable_assignment name: (variable_name) value: (command_substitution "
            "(command name: (command_name (word))))))",
        ),
        (
            "FOO=1 a",
            "(program (command (variable_assignment name: (variable_name) value: (number)) "
            "name: (command_name (word))))",
        ),
        (
            "export A=1",
            "(program (declaration_command "
            "(variable_assignment name: (variable_name) value: (number))))",
        ),
        (
            "f() { a; }",
            "(program (function_definition name: (word) body: (compound_statement "
            "(command name: (command_name (word))))))",
        ),
        (
            "a > f",
            "(program (redirected_statement body: (command name: (command_name (word))) "
            "redirect: (file_redirect destination: (word))))",
        ),
        (
            "a 2>&1",
            "(program (redirected_statement body: (command name: (command_name (word))) "
            "redirect: (file_redirect descriptor: (file_descriptor) destination: (number))))",
        ),
        (
            "a <<< x",
            "(program (command name: (command_name (word)) "
            "redirect: (herestring_redirect (word))))",
        ),
        (
            "diff <(a) >(b)",
            "(program (command name: (command_name (word)) argument: (process_substitution "
            "(command name: (command_name (word)))) argument: (process_substitution "
            "(command name: (command_name (word))))))",
        ),
        (
            'echo "x $(a)"',
            "(program (command name: (command_name (word)) argument: (string (string_content) "
            "(command_substitution (command name: (command_name (word)))))))",
        ),
        (
            "echo `a`",
            "(program (command name: (command_name (word)) argument: (command_substitution "
            "(command name: (command_name (word))))))",
        ),
        (
            "echo 'a' $'\\x72' $HOME ${HOME}",
            "(program (command name: (command_name (word)) argument: (raw_string) "
            "argument: (ansi_c_string) argument: (simple_expansion (variable_name)) "
            "argument: (expansion (variable_name))))",
        ),
        (
            "r''m",
            "(program (command name: (command_name (concatenation (word) (raw_string) (word)))))",
        ),
        ("time ls", "(program (command name: (command_name (word)) argument: (word)))"),
        (
            "[[ -f x ]]",
            "(program (test_command (unary_expression operator: (test_operator) (word))))",
        ),
        (
            "a=1 b=2",
            "(program (variable_assignments "
            "(variable_assignment name: (variable_name) value: (number)) "
            "(variable_assignment name: (variable_name) value: (number))))",
        ),
    ],
)
def test_shapes(text: str, shape: str) -> None:
    assert sexp(text) == shape


def test_flag_words_are_aliased_test_operators_but_typed_word() -> None:
    arg = parse(b"rm -rf /").children[0].children[1]
    assert arg.type == "word"
    assert arg.grammar_name == "test_operator"


def test_heredoc_shapes() -> None:
    root = parse(b"bash <<'EOF'\nrm -rf /\nEOF")
    heredoc = first(root, "heredoc_redirect")
    assert [c.type for c in heredoc.children] == [
        "<<",
        "heredoc_start",
        "heredoc_body",
        "heredoc_end",
    ]
    # a pipeline after the heredoc start is nested *inside* the heredoc redirect
    root = parse(b"cat <<EOF | sh\nrm -rf /\nEOF")
    heredoc = first(root, "heredoc_redirect")
    assert [c.type for c in heredoc.named_children] == [
        "heredoc_start",
        "pipeline",
        "heredoc_body",
        "heredoc_end",
    ]
    assert first(heredoc, "pipeline").children[0].type == "|"
    # unquoted bodies carry their substitutions
    assert (
        first(parse(b"cat <<EOF\n$(id)\nEOF"), "heredoc_body").named_children[0].type
        == "command_substitution"
    )


def test_error_shapes_the_gate_must_fail_closed_on() -> None:
    assert parse(b"{rm,-rf,~}").has_error  # brace expansion in command position
    assert parse(b"exec 3<>/dev/tcp/h/80").has_error  # the <> redirection
    assert parse(b"ls &&").has_error
    assert parse(b"echo 'a").has_error
    assert not parse(
        b"ls ;; pwd"
    ).has_error  # accepted by tree-sitter; bash rejects it (runs nothing)


def test_backslash_newline_quirk_read_twice() -> None:
    """tree-sitter-bash splits `r\\<newline>m` into two words; bash joins them (the analyzer
    reads the joined text too)."""
    words = parse(b"r\\\nm -rf /").children[0].children
    assert [w.type for w in words][:2] == ["command_name", "word"]
    assert (
        sexp("rm \\\n -rf /")
        == "(program (command name: (command_name (word)) argument: (word) argument: (word)))"
    )


def test_leading_escaped_space_quirk() -> None:
    """`\\ a` is one word " a" in bash; tree-sitter-bash drops the escaped space (so `rm -rf \\ /`
    is judged as `rm -rf /`: stricter, never looser)."""
    assert sexp("echo \\ a") == "(program (command name: (command_name (word)) argument: (word)))"
    assert parse(b"echo \\ a").children[0].children[1].text == b"a"


def test_quoted_then_escaped_quirk() -> None:
    """`'r'\\m` is one word in bash; tree-sitter-bash 0.25.1 gives two touching nodes (the
    analyzer glues touching nodes back together)."""
    command = parse(b"'r'\\m -rf /").children[0]
    name, second = command.children[0], command.children[1]
    assert (name.type, second.type) == ("command_name", "word")
    assert name.end_byte == second.start_byte


def test_lone_dash_before_fd_redirect_quirk() -> None:
    """`rm - 2>&1` loses its `-` argument in tree-sitter-bash 0.25.1 (harmless: stdin marker);
    the parser-free path for plain lines keeps it, as bash does."""
    command = parse(b"rm - 2>&1").children[0].children[0]
    assert [c.type for c in command.children] == ["command_name"]


def test_trailing_newline_keeps_tree_and_errors() -> None:
    for text in ("a | b | c", "ls &&", "echo 'a", "cat <<EOF\nx\nEOF", "x=1"):
        raw = get_parser().parse(text.encode()).root_node
        assert parse(text.encode()).has_error == raw.has_error, text


def test_parser_is_per_thread() -> None:
    import threading

    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(get_parser()))
    thread.start()
    thread.join()
    assert seen[0] is not get_parser()
    assert get_parser() is get_parser()
