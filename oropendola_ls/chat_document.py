"""The chat document: a Markdown file that holds a conversation with Oropendola.

Plain text handling (no LSP types), used by `features.chat_document`. The format::

    Anything before the first heading is the preamble (notes, the conversation mark).
    <!-- oropendola:conversation=<id> -->

    ## You

    What does this project do?

    ## Oropendola

    The answer, streamed in by the server.

    ## You

    The next question.

A heading is a line that is exactly ``## You`` or ``## Oropendola`` (trailing spaces allowed),
at the start of the line and outside fenced code blocks. Positions here are 0-based lines and
code-point columns of the text with every line break (``\\r\\n``, ``\\r``, ``\\n``) read as one
``\\n``: the way LSP counts lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

import attrs

Role = Literal["you", "oropendola"]

CHAT_SUFFIX = ".oropendola.md"
YOU_HEADING = "## You"
ANSWER_HEADING = "## Oropendola"
ANSWER_HEADER = ANSWER_HEADING + "\n\n"
"""What starts every answer the server writes: the heading and a blank line."""
NEXT_QUESTION = YOU_HEADING + "\n\n"
CANCELLED_LINE = "_(cancelled)_"
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})

_HEADINGS: dict[str, Role] = {YOU_HEADING: "you", ANSWER_HEADING: "oropendola"}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_CONVERSATION = re.compile(r"<!--\s*oropendola:conversation=(?P<id>[^\s>]*)\s*-->")
_CONVERSATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,199}")
"""Conversation ids the document can hold (the comment must stay a valid HTML comment)."""


def normalise(text: str) -> str:
    """``text`` with every line break as ``\\n``."""
    return _LINE_BREAK.sub("\n", text)


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` without their breaks; a final break leaves an empty last line."""
    return _LINE_BREAK.split(text)


def is_chat_path(path: str) -> bool:
    """Whether a file name or URI path names a chat document (``*.oropendola.md``)."""
    return path.lower().endswith(CHAT_SUFFIX)


@attrs.frozen
class Place:
    line: int
    character: int


@attrs.frozen
class Section:
    role: Role
    heading_line: int
    end_line: int
    """The line after the section: the next heading's line, or the number of lines."""

    def contains(self, line: int) -> bool:
        return self.heading_line <= line < self.end_line


@attrs.frozen
class Fence:
    """A fenced code block, from its opening line to its closing line (both included)."""

    start_line: int
    end_line: int
    """The closing fence's line, or the last line of the document when it is never closed."""
    info: str
    closed: bool

    @property
    def language(self) -> str:
        words = self.info.split()
        return words[0].strip("{}.").lower() if words else ""

    @property
    def body_lines(self) -> range:
        return range(self.start_line + 1, self.end_line if self.closed else self.end_line + 1)


@attrs.frozen
class Question:
    """The last ``## You`` section: its message, and whether an answer follows it."""

    section: Section
    text: str
    answered: bool


@attrs.frozen
class ShellCommand:
    """A command of a shell block in an answer, on lines ``start_line``..``end_line``."""

    command: str
    start_line: int
    end_line: int
    """Included: the last line of a command continued with backslashes."""
    block: Fence


@attrs.frozen
class ConversationMark:
    """The ``<!-- oropendola:conversation=<id> -->`` comment in the preamble."""

    id: str
    line: int
    start: int
    end: int


@attrs.frozen
class ChatDocument:
    lines: tuple[str, ...]
    sections: tuple[Section, ...]
    fences: tuple[Fence, ...]
    conversation: ConversationMark | None

    @classmethod
    def parse(cls, text: str) -> ChatDocument:
        lines = tuple(split_lines(text))
        headings: list[tuple[int, Role]] = []
        fences: list[Fence] = []
        for number, line, fence in _scan(lines):
            if fence is not None:
                fences.append(fence)
            else:
                role = _HEADINGS.get(line.rstrip())
                if role is not None:
                    headings.append((number, role))
        sections = tuple(
            Section(role, start, headings[i + 1][0] if i + 1 < len(headings) else len(lines))
            for i, (start, role) in enumerate(headings)
        )
        preamble_end = sections[0].heading_line if sections else len(lines)
        return cls(lines, sections, tuple(fences),
                   _conversation_mark(lines, preamble_end, fences))

    @property
    def preamble_end(self) -> int:
        """The line of the first heading (the preamble is the lines before it)."""
        return self.sections[0].heading_line if self.sections else len(self.lines)

    @property
    def end(self) -> Place:
        return Place(len(self.lines) - 1, len(self.lines[-1]))

    def section_at(self, line: int) -> Section | None:
        return next((s for s in self.sections if s.contains(line)), None)

    def last_question(self) -> Question | None:
        """The last ``## You`` section, its message (trimmed), and whether it is answered."""
        index = next((i for i in range(len(self.sections) - 1, -1, -1)
                      if self.sections[i].role == "you"), None)
        if index is None:
            return None
        section = self.sections[index]
        text = "\n".join(self.lines[section.heading_line + 1:section.end_line]).strip()
        answered = any(s.role == "oropendola" for s in self.sections[index + 1:])
        return Question(section, text, answered)

    def shell_commands(self) -> list[ShellCommand]:
        """The commands of every ``sh``/``bash``/``shell``/``console`` block in an answer.

        One command per line that is neither blank nor a comment; a leading ``$ `` prompt is
        removed; lines ending in a backslash continue on the next one. When a block has prompts
        (a console transcript), only the prompted lines are commands: the rest is output.
        """
        commands: list[ShellCommand] = []
        for fence in self.fences:
            section = self.section_at(fence.start_line)
            if section is None or section.role != "oropendola" or \
                    fence.language not in SHELL_LANGUAGES:
                continue
            commands.extend(_block_commands(self.lines, fence))
        return commands

    def fence_at(self, line: int) -> Fence | None:
        return next((f for f in self.fences if f.start_line <= line <= f.end_line), None)


def _scan(lines: tuple[str, ...]) -> Iterator[tuple[int, str, Fence | None]]:
    """Each line outside fenced blocks as (number, line, None); each block once as a Fence."""
    number = 0
    while number < len(lines):
        line = lines[number]
        opening = _FENCE_OPEN.match(line)
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            yield number, line, None
            number += 1
            continue
        marker = opening["fence"]
        closing = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
        end = next((n for n in range(number + 1, len(lines)) if closing.match(lines[n])), None)
        fence = Fence(number, end if end is not None else len(lines) - 1,
                      opening["info"].strip(), end is not None)
        yield number, line, fence
        number = fence.end_line + 1


def _conversation_mark(lines: tuple[str, ...], preamble_end: int,
                       fences: list[Fence]) -> ConversationMark | None:
    fenced = {n for f in fences if f.start_line < preamble_end
              for n in range(f.start_line, f.end_line + 1)}
    for number in range(preamble_end):
        if number in fenced:
            continue
        found = _CONVERSATION.search(lines[number])
        if found is not None and _CONVERSATION_ID.fullmatch(found["id"]):
            return ConversationMark(found["id"], number, found.start(), found.end())
    return None


def _block_commands(lines: tuple[str, ...], fence: Fence) -> Iterator[ShellCommand]:
    body = list(fence.body_lines)
    prompted = any(_prompt(lines[n]) is not None for n in body)
    index = 0
    while index < len(body):
        start = body[index]
        text = lines[start].strip()
        while _continues(text) and index + 1 < len(body):
            index += 1
            text = text[:-1].rstrip() + " " + lines[body[index]].strip()
        end = body[index]
        index += 1
        if prompted:
            command = _prompt(text)
            if command is None:
                continue  # output in a console transcript
        else:
            command = text
        command = command.strip()
        if command.endswith("\\") and _continues(command):
            command = command[:-1].rstrip()
        if command and not command.startswith("#"):
            yield ShellCommand(command, start, end, fence)


def _prompt(line: str) -> str | None:
    """The command after a ``$ `` prompt, or None when the line has no prompt."""
    stripped = line.strip()
    if stripped.startswith("$ "):
        return stripped[2:]
    return None


def _continues(text: str) -> bool:
    """Whether ``text`` ends with an unescaped backslash (a line continuation)."""
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


# -- what the server writes ---------------------------------------------------------------------


def open_fence(text: str) -> str | None:
    """The fence marker of the block ``text`` ends inside, or None when every block is closed."""
    lines = tuple(split_lines(text))
    last = None
    for _, _, fence in _scan(lines):
        if fence is not None:
            last = fence
    if last is None or last.closed:
        return None
    found = _FENCE_OPEN.match(lines[last.start_line])
    return found["fence"] if found is not None else None


def _blank_line_before(text: str) -> str:
    """The line breaks that put a blank line between ``text`` and what follows it."""
    if not text:
        return ""
    trailing = len(text) - len(text.rstrip("\n"))
    return "\n" * max(0, 2 - trailing)


def answer_opening(text: str) -> str:
    """What to append to a document whose text is ``text`` to start an answer.

    Closes a code block the question left open (or the heading would be inside it), then a
    blank line, then `ANSWER_HEADER`; the answer's text follows that directly.
    """
    text = normalise(text)
    prefix = ""
    fence = open_fence(text)
    if fence is not None:
        prefix = ("" if text.endswith("\n") or not text else "\n") + fence + "\n"
    return prefix + _blank_line_before(text + prefix) + ANSWER_HEADER


def answer_closing(answer: str, *, cancelled: bool = False, note: str | None = None) -> str:
    """What follows an answer whose text so far is ``answer``: the next ``## You`` heading.

    Closes a code block the answer left open, adds the `CANCELLED_LINE` (or ``note``), and
    leaves the cursor's place, a blank line under ``## You``, for the next message.
    """
    answer = normalise(answer)
    written = ANSWER_HEADER + answer
    closing = ""
    fence = open_fence(answer)
    if fence is not None:
        closing = ("" if written.endswith("\n") else "\n") + fence + "\n"
    line = CANCELLED_LINE if cancelled else note
    if line:
        closing += _blank_line_before(written + closing) + line + "\n"
    return closing + _blank_line_before(written + closing) + NEXT_QUESTION


def find_answer_end(text: str, written: str) -> int | None:
    """The offset, in ``normalise(text)``, just after an answer that reads ``written`` so far.

    The answer is found by its content: the last place where `ANSWER_HEADER` is followed by
    exactly the text written so far. Edits elsewhere in the document do not move it; an edit
    inside the answer makes it unfindable (None).
    """
    needle = ANSWER_HEADER + normalise(written)
    found = normalise(text).rfind(needle)
    return None if found < 0 else found + len(needle)


def last_answer_end(document: ChatDocument) -> Place | None:
    """The end of the last ``## Oropendola`` section's text (before any heading after it)."""
    section = next((s for s in reversed(document.sections) if s.role == "oropendola"), None)
    if section is None:
        return None
    if section.end_line >= len(document.lines):
        return document.end
    line = section.end_line - 1  # the line before the next heading
    return Place(line, len(document.lines[line]))


def place_at(text: str, offset: int) -> Place:
    """The line and column of ``offset`` in ``text`` (normalised line breaks)."""
    line = text.count("\n", 0, offset)
    return Place(line, offset - (text.rfind("\n", 0, offset) + 1))


def valid_conversation_id(conversation_id: str) -> bool:
    return _CONVERSATION_ID.fullmatch(conversation_id) is not None


def conversation_comment(conversation_id: str) -> str:
    return f"<!-- oropendola:conversation={conversation_id} -->"


def conversation_edit(document: ChatDocument, conversation_id: str
                      ) -> tuple[Place, Place, str] | None:
    """The edit (start, end, new text) that records ``conversation_id`` in the document.

    None when the document already holds it, or when the id cannot be written in a comment.
    A new mark goes at the end of the preamble, just before the first heading.
    """
    if not valid_conversation_id(conversation_id):
        return None
    mark = document.conversation
    if mark is not None:
        if mark.id == conversation_id:
            return None
        return (Place(mark.line, mark.start), Place(mark.line, mark.end),
                conversation_comment(conversation_id))
    where = Place(document.preamble_end, 0)
    return where, where, conversation_comment(conversation_id) + "\n\n"
