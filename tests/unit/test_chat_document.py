"""The chat document's text handling: sections, the question, shell blocks, what gets written."""

from __future__ import annotations

import pytest

from oropendola_ls.chat_document import (
    ANSWER_HEADER,
    ChatDocument,
    Place,
    answer_closing,
    answer_opening,
    conversation_edit,
    find_answer_end,
    is_chat_path,
    last_answer_end,
    open_fence,
    place_at,
)

CHAT = """\
Notes about this chat.

## You

What does the reference backend do?

## Oropendola

It answers from the workspace index.

```sh
$ pytest -q
3 passed
```

## You

And how do I install it?
"""


def test_sections_preamble_and_last_question() -> None:
    doc = ChatDocument.parse(CHAT)
    assert [(s.role, s.heading_line) for s in doc.sections] == [
        ("you", 2), ("oropendola", 6), ("you", 15)]
    assert doc.preamble_end == 2
    assert doc.sections[0].end_line == 6 and doc.sections[-1].end_line == len(doc.lines)
    question = doc.last_question()
    assert question is not None
    assert question.text == "And how do I install it?" and not question.answered
    assert question.section.heading_line == 15


def test_answered_question_and_documents_without_questions() -> None:
    doc = ChatDocument.parse("## You\n\nhi\n\n## Oropendola\n\nhello\n")
    question = doc.last_question()
    assert question is not None and question.answered and question.text == "hi"
    assert ChatDocument.parse("# Title\n\nno chat here\n").last_question() is None
    empty = ChatDocument.parse("## You\n\n   \n").last_question()
    assert empty is not None and empty.text == ""


@pytest.mark.parametrize("line", ["## you", "### You", " ## You", "## You said", "##You",
                                  "## Oropendola's answer"])
def test_only_exact_headings_count(line: str) -> None:
    doc = ChatDocument.parse(f"## You\n\nq\n{line}\nmore\n")
    assert len(doc.sections) == 1
    question = doc.last_question()
    assert question is not None and line in question.text


def test_trailing_spaces_and_crlf_are_headings() -> None:
    doc = ChatDocument.parse("intro\r\n## You  \r\n\r\nquestion\r\n## Oropendola\r\nanswer")
    assert [s.role for s in doc.sections] == ["you", "oropendola"]
    question = doc.last_question()
    assert question is not None and question.text == "question" and question.answered


def test_headings_inside_fenced_blocks_are_not_headings() -> None:
    text = ("## You\n\nWhy does this fail?\n\n```markdown\n## Oropendola\n## You\n```\n\n"
            "~~~~\n## Oropendola\n~~~\nstill inside\n~~~~\n")
    doc = ChatDocument.parse(text)
    assert [s.role for s in doc.sections] == ["you"]
    question = doc.last_question()
    assert question is not None and not question.answered
    assert "## Oropendola" in question.text and question.text.endswith("~~~~")
    assert [(f.start_line, f.end_line, f.closed) for f in doc.fences] == [
        (4, 7, True), (9, 13, True)]


def test_an_unclosed_fence_runs_to_the_end() -> None:
    doc = ChatDocument.parse("## You\n\n```python\nx = 1\n## Oropendola\n")
    assert len(doc.sections) == 1 and doc.fences[0].closed is False
    assert open_fence("text\n```python\nx = 1\n") == "```"
    assert open_fence("````\n```\n") == "````"
    assert open_fence("```sh\nls\n```\n") is None
    assert open_fence("inline ``` is not a fence ```") is None


def test_shell_commands_only_in_answers() -> None:
    text = """\
## You

```sh
rm -rf /
```

## Oropendola

Run these:

```bash
# set up
python -m pip install -e .

pytest -q \\
  --maxfail=1 \\
  tests/unit
```

```python
print("not shell")
```

```console
$ npm test
> all good
$ echo done
done
```

```SHELL title="x"
$ make
```
"""
    doc = ChatDocument.parse(text)
    found = [(c.command, c.start_line, c.end_line) for c in doc.shell_commands()]
    assert found == [
        ("python -m pip install -e .", 12, 12),
        ("pytest -q --maxfail=1 tests/unit", 14, 16),
        ("npm test", 24, 24),
        ("echo done", 26, 26),
        ("make", 31, 31),
    ]
    first = doc.shell_commands()[0]
    assert (first.block.start_line, first.block.end_line, first.block.language) == (
        10, 17, "bash")
    assert doc.fence_at(15) is first.block and doc.fence_at(18) is None


def test_a_trailing_backslash_at_the_block_end_is_dropped() -> None:
    doc = ChatDocument.parse("## Oropendola\n\n```sh\nls -la \\\n```\n")
    assert [c.command for c in doc.shell_commands()] == ["ls -la"]


def test_answer_opening_keeps_a_blank_line_and_closes_open_blocks() -> None:
    assert answer_opening("## You\n\nq\n") == "\n" + ANSWER_HEADER
    assert answer_opening("## You\n\nq") == "\n\n" + ANSWER_HEADER
    assert answer_opening("## You\n\nq\n\n\n") == ANSWER_HEADER
    assert answer_opening("## You\n\n```sh\nls") == "\n```\n\n" + ANSWER_HEADER
    text = "## You\n\n```sh\nls\n"
    question = ChatDocument.parse(text + answer_opening(text)).last_question()
    assert question is not None and question.answered


def test_answer_closing() -> None:
    assert answer_closing("The answer.\n") == "\n## You\n\n"
    assert answer_closing("The answer.") == "\n\n## You\n\n"
    assert answer_closing("Partial", cancelled=True) == "\n\n_(cancelled)_\n\n## You\n\n"
    assert answer_closing("") == "## You\n\n"
    assert answer_closing("Run:\n\n```sh\npytest") == "\n```\n\n## You\n\n"
    assert answer_closing("x", note="_(failed: boom)_") == "\n\n_(failed: boom)_\n\n## You\n\n"


def test_a_full_exchange_parses_back() -> None:
    text = "## You\n\nhi\n"
    answer = "hello\n\n```sh\n$ pytest -q\n```\n"
    text += answer_opening(text) + answer + answer_closing(answer)
    doc = ChatDocument.parse(text)
    assert [s.role for s in doc.sections] == ["you", "oropendola", "you"]
    question = doc.last_question()
    assert question is not None and question.text == "" and not question.answered
    assert doc.end == Place(len(doc.lines) - 1, 0)
    assert [c.command for c in doc.shell_commands()] == ["pytest -q"]


def test_find_answer_end_follows_the_content() -> None:
    before = "intro\n\n## You\n\nq\n\n"
    text = before + ANSWER_HEADER + "Hello"
    assert find_answer_end(text, "Hello") == len(text)
    assert find_answer_end(text, "") == len(before) + len(ANSWER_HEADER)
    # Typing before it or after it does not move it; the offset is still just after "Hello".
    typed = "typed at the top\n" + text + "\ntyped below"
    end = find_answer_end(typed, "Hello")
    assert end is not None and typed[:end].endswith("## Oropendola\n\nHello")
    # CRLF documents: offsets are in the normalised text.
    crlf = text.replace("\n", "\r\n")
    assert find_answer_end(crlf, "Hello") == len(text)
    # An edit inside the answer makes it unfindable.
    assert find_answer_end(text.replace("Hello", "Help"), "Hello") is None


def test_find_answer_end_picks_the_last_answer() -> None:
    text = "## You\n\na\n\n## Oropendola\n\n\n## You\n\nb\n\n## Oropendola\n\n"
    assert find_answer_end(text, "") == len(text)


def test_last_answer_end() -> None:
    doc = ChatDocument.parse("## You\n\na\n\n## Oropendola\n\nanswer\n## You\n\n")
    assert last_answer_end(doc) == Place(6, 6)
    doc = ChatDocument.parse("## You\n\na\n\n## Oropendola\n\nanswer")
    assert last_answer_end(doc) == Place(6, 6)
    assert last_answer_end(ChatDocument.parse("## You\n\na\n")) is None


def test_place_at() -> None:
    assert place_at("ab\ncd\n", 0) == Place(0, 0)
    assert place_at("ab\ncd\n", 4) == Place(1, 1)
    assert place_at("ab\ncd\n", 6) == Place(2, 0)


def test_conversation_mark_is_read_from_the_preamble_only() -> None:
    doc = ChatDocument.parse("Intro\n<!-- oropendola:conversation=conv-1 -->\n\n## You\n\nq\n")
    assert doc.conversation is not None and doc.conversation.id == "conv-1"
    assert doc.conversation.line == 1
    later = ChatDocument.parse("## You\n\n<!-- oropendola:conversation=conv-2 -->\n")
    assert later.conversation is None
    fenced = ChatDocument.parse("```\n<!-- oropendola:conversation=c -->\n```\n## You\n")
    assert fenced.conversation is None


def test_conversation_edit() -> None:
    doc = ChatDocument.parse("## You\n\nq\n")
    assert conversation_edit(doc, "abc-1") == (
        Place(0, 0), Place(0, 0), "<!-- oropendola:conversation=abc-1 -->\n\n")
    doc = ChatDocument.parse("Notes\n\n## You\n\nq\n")
    assert conversation_edit(doc, "abc-1") == (
        Place(2, 0), Place(2, 0), "<!-- oropendola:conversation=abc-1 -->\n\n")
    doc = ChatDocument.parse("x <!-- oropendola:conversation=old --> y\n## You\n")
    assert conversation_edit(doc, "new") == (
        Place(0, 2), Place(0, 38), "<!-- oropendola:conversation=new -->")
    assert conversation_edit(doc, "old") is None
    assert conversation_edit(doc, "has space") is None
    assert conversation_edit(doc, "a-->b") is None


def test_chat_paths() -> None:
    assert is_chat_path("/home/me/notes.oropendola.md")
    assert is_chat_path("file:///home/me/Notes.Oropendola.MD")
    assert not is_chat_path("/home/me/notes.md")
