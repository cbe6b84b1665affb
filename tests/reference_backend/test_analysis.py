"""The static checks behind ``files.analyze``: each rule, positions in code points, and order."""

from __future__ import annotations

import textwrap

import pytest

from oropendola_ls.reference_backend.analysis import (
    MAX_FINDINGS_PER_RULE,
    Finding,
    analyze,
    is_python,
)


def py(source: str) -> list[Finding]:
    return analyze("module.py", textwrap.dedent(source), None)


def rules(findings: list[Finding]) -> list[tuple[str, int]]:
    return [(f.rule, f.start_line) for f in findings]


def only(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def span(finding: Finding) -> tuple[int, int, int, int]:
    return finding.start_line, finding.start_column, finding.end_line, finding.end_column


# -- which files are Python ----------------------------------------------------------------------


def test_python_is_recognised_by_language_or_suffix() -> None:
    assert is_python("a.py", None) and is_python("stubs/a.PYI", None)
    assert is_python(None, "python") and is_python("notes.txt", " Python ")
    assert not is_python("a.txt", None) and not is_python(None, None)
    assert not is_python("a.js", "javascript")
    assert analyze("a.txt", "import os\n", None) == []
    assert rules(analyze("a.txt", "import os\n", "python")) == [("unused-import", 1)]


# -- syntax errors -------------------------------------------------------------------------------


def test_syntax_error_is_an_error_with_a_position() -> None:
    [finding] = py("x = 1\ndef broken(:\n    pass\n")
    assert (finding.rule, finding.severity) == ("syntax-error", "error")
    assert "invalid syntax" in finding.message
    assert span(finding) == (2, 11, 2, 12)


def test_syntax_error_columns_are_code_points() -> None:
    [finding] = analyze("a.py", "é = 'é' é\n", None)
    assert span(finding)[:2] == (1, 8)


@pytest.mark.parametrize(
    ("source", "line"),
    [("if x:\npass\n", 2), ("x = (\n", 1), ("s = '''\n", 1), ("\tif x:\n        y\n", 1),
     ("x = 1\x00\n", 1), ("(" * 300, 1), ("def f():\n  return\n    x\n", 3)],
)
def test_every_kind_of_syntax_error_is_reported_once(source: str, line: int) -> None:
    findings = only(analyze("a.py", source, None), "syntax-error")
    assert len(findings) == 1
    assert findings[0].start_line == line
    assert findings[0].end_column >= findings[0].start_column


def test_syntax_error_skips_the_other_python_rules() -> None:
    findings = py("import os\ndef f(:\n")
    assert rules(findings) == [("syntax-error", 2)]


def test_very_deep_code_is_skipped_not_crashed() -> None:
    findings = analyze("a.py", "x = " + "+".join(["1"] * 100_000) + "\n", None)
    assert [(f.rule, f.severity) for f in findings] == [
        ("analysis-skipped", "info"), ("line-too-long", "info"),
    ]
    assert "nested too deeply" in findings[0].message


# -- unused imports ------------------------------------------------------------------------------


def test_unused_imports_are_named() -> None:
    findings = py("""\
        import os
        import sys, json as j
        import xml.etree.ElementTree
        from collections import OrderedDict, deque as dq
        from . import sibling
        print(sys.argv)
        """)
    assert [(f.start_line, f.message) for f in only(findings, "unused-import")] == [
        (1, "'os' is imported but never used"),
        (2, "'json' is imported as 'j' but 'j' is never used"),
        (3, "'xml.etree.ElementTree' is imported as 'xml' but 'xml' is never used"),
        (4, "'OrderedDict' is imported from 'collections' but never used"),
        (4, "'dq' is imported from 'collections' but never used"),
        (5, "'sibling' is imported from '.' but never used"),
    ]
    assert all(f.severity == "warning" for f in findings)
    assert span(findings[0]) == (1, 7, 1, 9)
    assert span(findings[1]) == (2, 12, 2, 21)


def test_imports_used_anywhere_are_not_reported() -> None:
    assert py("""\
        from __future__ import annotations
        import os.path
        import typing as t
        from typing import TYPE_CHECKING, cast
        from pkg import *
        from pkg import exported as exported
        import re as re
        if TYPE_CHECKING:
            from pathlib import Path
            from decimal import Decimal
            from fractions import Fraction
        from json import dumps, loads

        __all__ = ["dumps"]

        def f(p: "Path", d: "list[Decimal] | None") -> t.Any:
            def g():
                return os.path.join("a")
            return cast("Fraction", g())
        del loads
        """) == []


def test_init_files_may_re_export() -> None:
    assert analyze("pkg/__init__.py", "from .core import thing\n", None) == []
    assert rules(analyze("pkg/core.py", "from .util import thing\n", None)) == [
        ("unused-import", 1)
    ]


def test_import_columns_are_code_points() -> None:
    [finding] = py("é = 'ééé'; import os\n")
    assert span(finding) == (1, 18, 1, 20)


# -- unused local variables ----------------------------------------------------------------------


def test_unused_locals_are_named_with_their_function() -> None:
    findings = py("""\
        def work(arg):
            total = 0
            count: int = 1
            _ignored = 2
            (a, b) = 1, 2
            if (found := arg):
                pass
            try:
                pass
            except ValueError as err:
                pass
            arg = 3
            return a
        """)
    unused = only(findings, "unused-variable")
    assert [(f.start_line, f.message) for f in unused] == [
        (2, "local variable 'total' in 'work' is assigned but never used"),
        (3, "local variable 'count' in 'work' is assigned but never used"),
        (6, "local variable 'found' in 'work' is assigned but never used"),
        (10, "local variable 'err' in 'work' is assigned but never used"),
    ]
    assert span(unused[0]) == (2, 4, 2, 9)
    assert span(unused[3]) == (10, 25, 10, 28)


def test_reads_anywhere_in_the_function_count() -> None:
    assert only(py("""\
        def outer():
            seen = set()
            total = 0
            total += 1
            def inner():
                return seen
            label = "x"
            lambda: label
            items = []
            [i for i in items]
            gone = 1
            del gone
            return inner
        """), "unused-variable") == []


def test_special_scopes_are_left_alone() -> None:
    findings = only(py("""\
        counter = 0
        def bump():
            global counter
            counter = 1
        def closure():
            value = 0
            def set_it():
                nonlocal value
                value = 1
            return set_it
        def dynamic():
            hidden = 1
            return locals()
        class Config:
            setting = 1
        for loop_var in range(3):
            pass
        def with_target():
            with open("f") as handle:
                pass
        """), "unused-variable")
    # Only a variable written (here through nonlocal) and never read anywhere is reported.
    assert [(f.start_line, f.message) for f in findings] == [
        (6, "local variable 'value' in 'closure' is assigned but never used")
    ]


def test_only_the_first_binding_is_reported() -> None:
    [finding] = only(py("def f():\n    x = 1\n    x = 2\n"), "unused-variable")
    assert finding.start_line == 2


# -- bare except, mutable defaults, complexity ---------------------------------------------------


def test_bare_except() -> None:
    findings = py("""\
        try:
            pass
        except:
            pass
        try:
            pass
        except Exception:
            pass
        """)
    [finding] = findings
    assert (finding.rule, finding.severity) == ("bare-except", "warning")
    assert span(finding) == (3, 0, 3, 6)
    assert "KeyboardInterrupt" in finding.message


def test_mutable_defaults() -> None:
    findings = py("""\
        def f(a, items=[], table={}, tags=set(), made=list(), *, opts=dict(), ok=None, t=()):
            return a, items, table, tags, made, opts, ok, t
        g = lambda cache={i: i for i in range(3)}: cache
        async def h(seen=[x for x in "ab"], n=0):
            return seen, n
        """)
    found = only(findings, "mutable-default")
    assert [f.message.split(" defaults to ")[0] for f in found] == [
        "parameter 'items' of 'f'", "parameter 'table' of 'f'", "parameter 'tags' of 'f'",
        "parameter 'made' of 'f'", "parameter 'opts' of 'f'", "parameter 'cache' of a lambda",
        "parameter 'seen' of 'h'",
    ]
    assert "a list" in found[0].message and "a dict" in found[1].message
    assert "a set" in found[2].message
    assert span(found[0]) == (1, 15, 1, 17)
    assert all(f.severity == "warning" for f in found)


def branching(name: str, branches: int) -> str:
    body = "".join(f"    if x == {n}:\n        return {n}\n" for n in range(branches))
    return f"def {name}(x):\n{body}    return -1\n"


def test_complexity_over_ten_is_reported_with_its_number() -> None:
    assert only(py(branching("simple", 9)), "complexity") == []  # 10: at the limit
    [finding] = only(py(branching("tangled", 10)), "complexity")
    assert finding.severity == "info"
    assert finding.message.startswith("'tangled' has cyclomatic complexity 11")
    assert span(finding) == (1, 4, 1, 11)


def test_complexity_counts_boolean_operators_loops_handlers_and_comprehensions() -> None:
    source = """\
        async def busy(xs):
            if xs and xs[0] or not xs:
                pass
            for x in xs:
                while x:
                    x -= 1
            try:
                pass
            except ValueError:
                pass
            except TypeError:
                pass
            ys = [y for y in xs if y if y > 1]
            z = 1 if ys else 2
            match z:
                case 1:
                    pass
                case _:
                    pass
            def nested():
                if xs: pass
            return nested
        """
    [finding] = only(py(source), "complexity")
    # 1 + if + or + and + for + while + 2 excepts + comprehension (1 + 2 ifs) + ifexp + 2 cases
    assert "complexity 14" in finding.message


# -- any text ------------------------------------------------------------------------------------


def test_trailing_whitespace() -> None:
    findings = analyze("notes.txt", "ok\nspace  \ntab\t\n   \nlast", None)
    assert [span(f) for f in findings] == [(2, 5, 2, 7), (3, 3, 3, 4), (4, 0, 4, 3)]
    assert {f.rule for f in findings} == {"trailing-whitespace"}
    assert {f.severity for f in findings} == {"info"}


def test_crlf_line_endings_are_not_trailing_whitespace() -> None:
    assert analyze("a.py", "x = 1\r\ny = x\r\n", None) == []


def test_long_lines_count_code_points() -> None:
    assert analyze("a.txt", "é" * 120, None) == []
    [finding] = analyze("a.txt", "ok\n" + "é" * 121, None)
    assert (finding.rule, span(finding)) == ("line-too-long", (2, 120, 2, 121))
    assert "121 characters" in finding.message


def test_mixed_indentation_is_reported_on_the_first_minority_line() -> None:
    text = "a\n    b\n    c\n\td\n\te\n    f\n"
    [finding] = analyze("a.txt", text, None)
    assert (finding.rule, finding.severity, span(finding)) == (
        "mixed-indentation", "warning", (4, 0, 4, 1),
    )
    assert "tabs" in finding.message and "3 lines" in finding.message
    [spaces] = analyze("a.txt", "\ta\n\tb\n  c\n", None)
    assert spaces.start_line == 3 and "spaces" in spaces.message
    assert analyze("a.txt", "\ta\n\tb\n", None) == []
    blank_tab = analyze("a.txt", "  a\n\t\n", None)  # a blank line is not indented
    assert only(blank_tab, "mixed-indentation") == []


def test_conflict_markers() -> None:
    text = "<<<<<<< HEAD\nmine\n=======\ntheirs\n>>>>>>> branch\n"
    findings = analyze("a.txt", text, None)
    assert [(f.rule, f.severity, f.start_line) for f in findings] == [
        ("conflict-marker", "error", 1), ("conflict-marker", "error", 3),
        ("conflict-marker", "error", 5),
    ]
    assert span(findings[0]) == (1, 0, 1, 12)


def test_a_heading_underline_is_not_a_conflict_marker() -> None:
    assert analyze("README.rst", "Heading\n=======\n\n========\n", None) == []
    assert analyze("a.txt", "<<<<<<<< not quite\n", None) == []


def test_conflict_markers_in_python_are_also_a_syntax_error() -> None:
    findings = analyze("a.py", "<<<<<<< HEAD\nx = 1\n=======\nx = 2\n>>>>>>> b\n", None)
    assert ("syntax-error", 1) in rules(findings)
    assert len(only(findings, "conflict-marker")) == 3


# -- whole-file behaviour ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "\r\n", " ", "\ufeff", "\x00"])
def test_tiny_files(text: str) -> None:
    for path in ("a.py", "a.txt"):
        findings = analyze(path, text, None)
        assert all(f.start_line >= 1 for f in findings)


def test_a_byte_order_mark_shifts_the_first_line() -> None:
    [finding] = analyze("a.py", "\ufeffimport os\n", None)
    assert span(finding) == (1, 8, 1, 10)


def test_unpaired_surrogates_do_not_break_analysis() -> None:
    assert analyze("a.py", "x = '\ud800'\n", None) == []


def test_findings_are_ordered_by_line_column_rule() -> None:
    source = "import os \ndef f(a=[]):\n    try:\n        pass\n    except:\n        pass\n"
    findings = analyze("a.py", source, None)
    assert findings == sorted(findings, key=lambda f: (f.start_line, f.start_column, f.rule))
    assert rules(findings) == [
        ("unused-import", 1), ("trailing-whitespace", 1), ("mutable-default", 2),
        ("bare-except", 5),
    ]
    assert analyze("a.py", source, None) == findings


def test_findings_serialise_with_wire_names() -> None:
    [finding] = analyze("a.txt", "x ", None)
    assert finding.to_json() == {
        "rule": "trailing-whitespace", "severity": "info", "message": "trailing whitespace",
        "startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 2,
    }


def test_many_findings_of_one_rule_are_capped_with_a_count() -> None:
    findings = analyze("a.txt", "x \n" * (MAX_FINDINGS_PER_RULE + 50), None)
    assert len(findings) == MAX_FINDINGS_PER_RULE + 1
    last = findings[-1]
    assert last.start_line == MAX_FINDINGS_PER_RULE + 1
    assert last.message == "50 more 'trailing-whitespace' findings from here on are not listed"
