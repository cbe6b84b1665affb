"""From a chat answer to an edit: which code block, shaped how, and where a test file goes."""

from __future__ import annotations

import pytest

from oropendola_ls.answer_edits import (
    canonical_language,
    code_blocks,
    first_free,
    fit_to_selection,
    replacement_block,
    replacement_text,
    safe_relative_path,
    suggested_test_path,
)

# -- reading fenced blocks ---------------------------------------------------------------------


def test_reads_backtick_and_tilde_fences_with_their_languages() -> None:
    answer = ("Intro\n\n```python\nx = 1\n```\n\ntext\n\n~~~ts title\nlet y = 2;\n~~~\n\n"
              "```\nplain\n```\n")
    blocks = code_blocks(answer)
    assert [(b.info, b.code, b.closed) for b in blocks] == [
        ("python", "x = 1", True), ("ts", "let y = 2;", True), ("", "plain", True)]
    assert [b.language for b in blocks] == ["python", "typescript", None]


def test_a_longer_fence_holds_shorter_ones_and_closes_only_on_its_own_kind() -> None:
    answer = "````markdown\n```python\nx = 1\n```\n~~~\n````\n"
    (block,) = code_blocks(answer)
    assert block.code == "```python\nx = 1\n```\n~~~"
    assert block.closed


def test_an_indented_fence_strips_that_indentation_from_its_lines() -> None:
    answer = "1. Change it:\n\n   ```py\n   def f():\n       return 1\n   ```\n"
    (block,) = code_blocks(answer)
    assert block.code == "def f():\n    return 1"


def test_four_spaces_is_not_a_fence_and_backticks_in_the_info_string_are_not_either() -> None:
    assert code_blocks("    ```python\n    x\n    ```\n") == []
    assert code_blocks("```a`b\nx\n") == []


def test_an_unclosed_block_runs_to_the_end_and_is_never_a_replacement() -> None:
    answer = "Here:\n```python\ndef f():\n    return"
    (block,) = code_blocks(answer)
    assert not block.closed and block.code == "def f():\n    return"
    assert replacement_block(answer, "python") is None


def test_crlf_answers_read_like_lf_ones() -> None:
    (block,) = code_blocks("```python\r\nx = 1\r\ny = 2\r\n```\r\n")
    assert block.code == "x = 1\ny = 2"


# -- choosing the replacement ----------------------------------------------------------------


def test_the_first_block_in_the_documents_language_wins() -> None:
    answer = "```text\nnot this\n```\n```sh\npip install x\n```\n```py\nthis = 1\n```\n" \
             "```python\nnor this\n```\n"
    block = replacement_block(answer, "python")
    assert block is not None and block.code == "this = 1"


def test_else_the_first_block_not_tagged_with_another_known_language() -> None:
    answer = "Run:\n```bash\npip install x\n```\nThen:\n```\nthis = 1\n```\n"
    block = replacement_block(answer, "python")
    assert block is not None and block.code == "this = 1"
    assert replacement_block("```bash\npip install x\n```\n", "python") is None
    # a language this module does not know is not "another language"
    block = replacement_block("```elixir-ish\nx\n```\n", "python")
    assert block is not None and block.code == "x"


def test_an_unknown_document_language_takes_the_first_block() -> None:
    block = replacement_block("```sh\nls\n```\n```python\nx\n```\n", None)
    assert block is not None and block.code == "ls"
    block = replacement_block("```zig\nconst x = 1;\n```\n", "zig")
    assert block is not None


def test_no_block_means_no_edit() -> None:
    assert replacement_text("Just prose, no code.", "x = 1\n", "python") is None
    assert replacement_block("```python\n\n```\n", "python") is None  # empty block


@pytest.mark.parametrize(("name", "canonical"), [
    ("Python", "python"), ("py3", "python"), ("shellscript", "shellscript"),
    ("bash", "shellscript"), ("TSX", "typescriptreact"), ("text", None), ("", None),
    (None, None), ("Elixir", "elixir"),
])
def test_language_names(name: str | None, canonical: str | None) -> None:
    assert canonical_language(name) == canonical


# -- fitting the code to the selection -------------------------------------------------------


def test_keeps_the_selections_trailing_newline() -> None:
    assert fit_to_selection("x = 2", "x = 1\n") == "x = 2\n"
    assert fit_to_selection("x = 2", "x = 1") == "x = 2"
    assert fit_to_selection("x = 2\n", "x = 1\n\n") == "x = 2\n\n"
    assert fit_to_selection("\n\nx = 2\n\n", "x = 1\n") == "x = 2\n"  # blank edges trimmed


def test_keeps_a_leading_newline_of_the_selection() -> None:
    assert fit_to_selection("x = 2", "\nx = 1\n") == "\nx = 2\n"


def test_gives_a_dedented_block_the_selections_base_indentation() -> None:
    selection = "    def f(x=[]):\n        return x\n"
    code = "def f(x=None):\n    if x is None:\n        x = []\n    return x"
    assert fit_to_selection(code, selection) == (
        "    def f(x=None):\n        if x is None:\n            x = []\n        return x\n")


def test_leaves_a_block_that_already_has_the_indentation_alone() -> None:
    selection = "    def f():\n        return 1\n"
    code = "    def f():\n        \"\"\"One.\"\"\"\n        return 1"
    assert fit_to_selection(code, selection) == code + "\n"


def test_blank_lines_stay_empty_when_reindenting_and_tabs_are_kept() -> None:
    selection = "\tif x:\n\t\ty()\n"
    code = "if x:\n\n\ty()\n\tz()"
    assert fit_to_selection(code, selection) == "\tif x:\n\n\t\ty()\n\t\tz()\n"


def test_selection_starting_after_the_indentation_code_shaped_like_it() -> None:
    # The offline engine answers in the selection's shape: first line without the indentation
    # the document keeps before the selection, the others in file columns.
    selection = "def f(x=[]):\n        return x"
    code = "def f(x=None):\n        if x is None:\n            x = []\n        return x"
    assert fit_to_selection(code, selection, line_prefix="    ") == code


def test_selection_starting_after_the_indentation_dedented_code() -> None:
    selection = "def f(x=[]):\n        return x"
    code = "def f(x=None):\n    if x is None:\n        x = []\n    return x"
    assert fit_to_selection(code, selection, line_prefix="    ") == (
        "def f(x=None):\n        if x is None:\n            x = []\n        return x")


def test_selection_starting_after_the_indentation_fully_indented_code() -> None:
    selection = "return compute(x)"
    code = "    return compute(x) + 1"
    assert fit_to_selection(code, selection, line_prefix="    ") == "return compute(x) + 1"


def test_one_line_selection_after_the_indentation_multi_line_dedented_code() -> None:
    selection = "total = a + b"
    code = "total = a + b\nreturn total"
    assert fit_to_selection(code, selection, line_prefix="        ") == (
        "total = a + b\n        return total")


def test_selection_starting_in_the_middle_of_code_keeps_the_first_line_as_it_is() -> None:
    selection = "g(1,\n          2)"
    code = "g(1,\n2, 3)"
    assert fit_to_selection(code, selection, line_prefix="    y = ") == "g(1,\n          2, 3)"
    indented = "g(1,\n      2, 3)"  # not dedented: left as it is
    assert fit_to_selection(indented, selection, line_prefix="    y = ") == indented


def test_crlf_selection_gets_crlf_code() -> None:
    assert fit_to_selection("a = 1\nb = 2", "a = 0\r\nb = 0\r\n") == "a = 1\r\nb = 2\r\n"


def test_replacement_text_puts_it_together() -> None:
    answer = ("Offline reference engine (no AI model connected): removed 1 unused import.\n\n"
              "```python\nimport json\n\ndef f():\n    return json.dumps({})\n```\n")
    selection = "import json\nimport os\n\ndef f():\n    return json.dumps({})\n"
    assert replacement_text(answer, selection, "python") == (
        "import json\n\ndef f():\n    return json.dumps({})\n")


# -- test files ----------------------------------------------------------------------------------


def test_takes_the_path_the_answer_names() -> None:
    answer = ("Offline reference engine (no AI model connected): a pytest skeleton for `add` "
              "from `mod`; save it as `tests/test_mod.py` and replace each TODO.")
    assert suggested_test_path(answer, "src/mod.py") == "tests/test_mod.py"
    assert suggested_test_path("Save this as ``tests/unit/test_a.py``.", "a.py") == \
        "tests/unit/test_a.py"


@pytest.mark.parametrize("named", ["/etc/passwd.py", "../outside/test_x.py", "C:/x/test.py",
                                   "tests/../../x.py", "tests/.hidden.py", "tests/test_x.js"])
def test_ignores_unsafe_or_foreign_paths_and_derives_one(named: str) -> None:
    answer = f"save it as `{named}`"
    assert suggested_test_path(answer, "pkg/util.py") == "tests/test_util.py"


def test_derives_from_the_module_when_the_answer_names_none() -> None:
    assert suggested_test_path("Here are tests.", "pkg/mod.py") == "tests/test_mod.py"
    assert suggested_test_path("Here are tests.", "pkg/test_mod.py") == "tests/test_mod.py"
    assert suggested_test_path("Here are tests.", "web/app.ts") == "tests/test_app.ts"
    assert suggested_test_path("Here are tests.", "my-mod.py") == "tests/test_my_mod.py"
    assert suggested_test_path("Here are tests.", None) == "tests/test_module.py"


def test_safe_relative_path() -> None:
    assert safe_relative_path("./tests//test_a.py") == "tests/test_a.py"
    assert safe_relative_path("tests\\test_a.py") == "tests/test_a.py"
    assert safe_relative_path("") is None
    assert safe_relative_path("a/\x00b.py") is None


def test_first_free_numbers_taken_names() -> None:
    taken = {"tests/test_mod.py", "tests/test_mod_2.py"}
    assert first_free("tests/test_new.py", taken.__contains__) == "tests/test_new.py"
    assert first_free("tests/test_mod.py", taken.__contains__) == "tests/test_mod_3.py"
    assert first_free("tests/test_mod.py", lambda _: True, most=3) is None
