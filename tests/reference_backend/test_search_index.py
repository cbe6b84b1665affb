"""The workspace code index on its own: chunking, terms, re-indexing, search ranking and safety."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from oropendola_ls.reference_backend.search_index import (
    CHUNK_CHARS,
    CHUNK_LINES,
    DB_FILENAME,
    SNIPPET_CHARS,
    SearchIndex,
    SourceFile,
    check_path,
    check_workspace_id,
    chunk_text,
    query_terms,
    terms,
)

JANE = "jane@example.com"
OMAR = "omar@example.com"

PARSER = """\
import json


def parse_config(path):
    with open(path) as handle:
        return json.load(handle)


class HTTPServer:
    def serve_forever(self):
        pass
"""


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SearchIndex]:
    opened = SearchIndex(tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def numbered(count: int, word: str = "line") -> str:
    return "\n".join(f"{word}_{n}" for n in range(1, count + 1))


# -- terms and chunks ----------------------------------------------------------------------------


def test_identifiers_give_themselves_and_their_parts() -> None:
    assert terms("parse_config") == ["parse_config", "parse", "config"]
    assert terms("parseConfig") == ["parseconfig", "parse", "config"]
    assert terms("HTTPServer") == ["httpserver", "http", "server"]
    assert terms("getURLs") == ["geturls", "get", "urls"]
    assert terms("__init__") == ["__init__", "init"]
    assert terms("x = 1") == ["x", "1"]


def test_terms_are_case_folded_and_unicode_aware() -> None:
    assert terms("Straße") == ["strasse"]
    assert terms("naïve café") == ["naïve", "café"]
    decomposed = "cafe\u0301"
    assert terms(decomposed) == terms("café")


@pytest.mark.parametrize(
    "query",
    ['"', '""', "AND", "OR", "NOT", "*", "NEAR(", "NEAR(a b)", "-x", "a:b", "(", ")", "^", "{a}",
     "col:term", "'", "\\", "a\x00b", "🦜", "\u200b"],
)
def test_query_terms_are_word_characters_only(query: str) -> None:
    for term in query_terms(query):
        assert term and all(ch.isalnum() or ch == "_" for ch in term), term


def test_query_terms_are_distinct_and_capped() -> None:
    assert query_terms("foo foo Foo") == ["foo"]
    assert len(query_terms(" ".join(f"w{n}" for n in range(500)))) == 64


def test_chunks_are_forty_line_windows_without_overlap() -> None:
    chunks = list(chunk_text(numbered(100)))
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 40), (41, 80), (81, 100)]
    assert chunks[0].text.split("\n")[0] == "line_1"
    assert chunks[2].text.split("\n")[-1] == "line_100"
    assert CHUNK_LINES == 40


def test_chunks_stop_early_for_long_lines_and_never_split_a_line() -> None:
    long_line = "word " * (CHUNK_CHARS // 5 - 200)  # 7000 characters: two do not fit
    chunks = list(chunk_text("\n".join([long_line, long_line, "short"])))
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 1), (2, 3)]


def test_chunks_follow_lsp_line_breaks_and_skip_text_without_words() -> None:
    chunks = list(chunk_text("a\r\nb\rc\nd\x0ce"))
    assert [(c.start_line, c.end_line, c.text) for c in chunks] == [(1, 4, "a\nb\nc\nd\x0ce")]
    assert list(chunk_text("")) == []
    assert list(chunk_text("\n\n  \n")) == []
    assert list(chunk_text("{}\n();\n")) == []


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("good", ["a.py", "src/a.py", "dir/.hidden", "a b/c-d_e.txt", "ünï/ç.py"])
def test_good_paths(good: str) -> None:
    assert check_path(good) == good


@pytest.mark.parametrize(
    "bad", ["", "/abs.py", "../up.py", "a/../b.py", "a//b.py", "./a.py", "a/./b", "a/", "a\x00b",
            "x" * 5000],
)
def test_bad_paths(bad: str) -> None:
    with pytest.raises(ValueError, match="path"):
        check_path(bad)


@pytest.mark.parametrize("bad", ["", "a b", "a/b", "x" * 101, "ws\n", "é"])
def test_bad_workspace_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="workspace_id"):
        check_workspace_id(bad)
    assert check_workspace_id("my-repo_1.2:main") == "my-repo_1.2:main"


def test_repeated_and_contradictory_paths_are_refused(index: SearchIndex) -> None:
    with pytest.raises(ValueError, match="given twice"):
        index.index(JANE, "ws", [SourceFile("a.py", "x"), SourceFile("a.py", "y")])
    with pytest.raises(ValueError, match="both indexed and removed"):
        index.index(JANE, "ws", [SourceFile("a.py", "x")], removed=["a.py"])
    with pytest.raises(ValueError, match="must be relative"):
        index.index(JANE, "ws", [SourceFile("ok.py", "x")], removed=["/etc/passwd"])
    assert index.workspaces(JANE) == []  # nothing was written


# -- indexing and search -------------------------------------------------------------------------


def test_search_finds_the_line(index: SearchIndex) -> None:
    outcome = index.index(JANE, "ws", [SourceFile("src/config.py", PARSER)])
    assert (outcome.indexed, outcome.removed, outcome.chunks) == (1, 0, 1)
    [hit] = index.search(JANE, "parse_config")
    assert (hit.workspace_id, hit.path, hit.start_line, hit.end_line) == (
        "ws", "src/config.py", 4, 4,
    )
    assert hit.snippet == "def parse_config(path):"
    assert hit.score > 0


def test_search_narrows_to_neighbouring_lines_that_add_terms(index: SearchIndex) -> None:
    index.index(JANE, "ws", [SourceFile("a.py", PARSER)])
    [hit] = index.search(JANE, "open handle json load")
    assert (hit.start_line, hit.end_line) == (5, 6)
    assert hit.snippet == "    with open(path) as handle:\n        return json.load(handle)"


def test_compound_identifiers_match_their_parts(index: SearchIndex) -> None:
    index.index(JANE, "ws", [SourceFile("a.py", PARSER)])
    assert [h.start_line for h in index.search(JANE, "parseConfig")] == [4]
    assert [h.start_line for h in index.search(JANE, "server")] == [9]
    assert [h.start_line for h in index.search(JANE, "forever")] == [10]
    assert [h.start_line for h in index.search(JANE, "SERVE_FOREVER")] == [10]


def test_more_terms_rank_higher(index: SearchIndex) -> None:
    index.index(JANE, "ws", [
        SourceFile("one.py", "alpha\n" + numbered(20, "filler")),
        SourceFile("two.py", "alpha beta\n" + numbered(20, "filler")),
        SourceFile("three.py", "alpha beta gamma\n" + numbered(20, "filler")),
        SourceFile("none.py", numbered(20, "other")),
    ])
    hits = index.search(JANE, "alpha beta gamma")
    assert [h.path for h in hits] == ["three.py", "two.py", "one.py"]
    assert hits[0].score > hits[1].score > hits[2].score > 0


def test_limit_and_workspace_scope(index: SearchIndex) -> None:
    index.index(JANE, "ws1", [SourceFile(f"f{n}.py", f"needle {n}") for n in range(5)])
    index.index(JANE, "ws2", [SourceFile("g.py", "needle")])
    assert len(index.search(JANE, "needle")) == 6
    assert len(index.search(JANE, "needle", limit=2)) == 2
    assert index.search(JANE, "needle", limit=0) == []
    assert [h.path for h in index.search(JANE, "needle", workspace_id="ws2")] == ["g.py"]
    assert index.search(JANE, "needle", workspace_id="nope") == []


@pytest.mark.parametrize(
    "query",
    ['"', 'needle"', "AND", "needle AND", "OR OR", "*", "needle*", "NEAR(", "NEAR(needle,",
     "-x", "-needle", "needle:", "terms:needle", "(needle", "^needle", "'needle'", "\\", "",
     "   ", "\x00", "NOT needle", "{needle}", "needle + - ! ~ @ # $ % & = ; , < > ? / |"],
)
def test_hostile_queries_never_raise(index: SearchIndex, query: str) -> None:
    index.index(JANE, "ws", [SourceFile("a.py", "needle and haystack\nnot near here")])
    hits = index.search(JANE, query)
    if "needle" in query:
        assert [h.path for h in hits] == ["a.py"]
        assert hits[0].start_line == 1


def test_keywords_are_searched_as_words(index: SearchIndex) -> None:
    index.index(JANE, "ws", [SourceFile("a.txt", "first\nsecond\nthis AND that\nnear here")])
    assert [(h.start_line, h.snippet) for h in index.search(JANE, "AND")] == [
        (3, "this AND that")
    ]
    assert [h.start_line for h in index.search(JANE, "NEAR(")] == [4]


def test_unicode_lines(index: SearchIndex) -> None:
    text = "# コメント\ndef grüße(name):\n    return f'héllo {name} 🦜'\n"
    index.index(JANE, "ws", [SourceFile("uni.py", text)])
    [hit] = index.search(JANE, "GRÜSSE")
    assert (hit.start_line, hit.snippet) == (2, "def grüße(name):")
    [hit] = index.search(JANE, "héllo")
    assert hit.start_line == 3
    assert index.search(JANE, "コメント")[0].start_line == 1


def test_unpaired_surrogates_are_stored_as_replacement_characters(index: SearchIndex) -> None:
    index.index(JANE, "ws", [SourceFile("s.py", "bad = '\ud800'\nneedle\n")])
    [hit] = index.search(JANE, "bad")
    assert hit.snippet == "bad = '\ufffd'"


def test_empty_and_wordless_files_are_stored_without_chunks(index: SearchIndex) -> None:
    outcome = index.index(JANE, "ws", [SourceFile("empty.py", ""), SourceFile("p.txt", "{}")])
    assert (outcome.indexed, outcome.chunks) == (2, 0)
    [summary] = index.workspaces(JANE)
    assert (summary.files, summary.chunks) == (2, 0)


def test_long_lines_are_clipped_around_the_match(index: SearchIndex) -> None:
    line = "pad " * 500 + "needle " + "pad " * 500
    index.index(JANE, "ws", [SourceFile("min.js", line)])
    [hit] = index.search(JANE, "needle")
    assert "needle" in hit.snippet
    assert len(hit.snippet) <= SNIPPET_CHARS + 2
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")


def test_reindexing_a_path_replaces_its_chunks(index: SearchIndex) -> None:
    index.index(JANE, "ws", [SourceFile("a.py", numbered(100, "old"))])
    outcome = index.index(JANE, "ws", [SourceFile("a.py", "new_text")])
    assert outcome.chunks == 1
    assert index.search(JANE, "old") == []
    assert [h.path for h in index.search(JANE, "new_text")] == ["a.py"]
    assert index.workspaces(JANE)[0].chunks == 1


def test_unchanged_files_are_not_rewritten(index: SearchIndex) -> None:
    first = index.index(JANE, "ws", [SourceFile("a.py", numbered(50))])
    again = index.index(JANE, "ws", [SourceFile("a.py", numbered(50))])
    assert (first.chunks, again.indexed, again.chunks) == (2, 1, 0)
    relabelled = index.index(JANE, "ws", [SourceFile("a.py", numbered(50), "plaintext")])
    assert relabelled.chunks == 2
    assert index.workspaces(JANE)[0].languages == {"plaintext": 1}


def test_removed_paths_disappear(index: SearchIndex) -> None:
    index.index(JANE, "ws", [SourceFile("a.py", "needle"), SourceFile("b.py", "needle")])
    outcome = index.index(JANE, "ws", [], removed=["a.py", "never-indexed.py"])
    assert outcome.removed == 1
    assert [h.path for h in index.search(JANE, "needle")] == ["b.py"]
    with sqlite3.connect(index.path) as db:  # the FTS rows went with the chunks
        assert db.execute("SELECT COUNT(*) FROM chunk_terms").fetchone() == (1,)


def test_force_rebuild_forgets_the_workspace_first(index: SearchIndex) -> None:
    index.index(JANE, "ws", [SourceFile("a.py", "needle"), SourceFile("b.py", "needle")])
    index.index(JANE, "other", [SourceFile("c.py", "needle")])
    outcome = index.index(JANE, "ws", [SourceFile("d.py", "needle")], force_rebuild=True)
    assert (outcome.indexed, outcome.chunks) == (1, 1)
    assert sorted(h.path for h in index.search(JANE, "needle")) == ["c.py", "d.py"]


def test_users_are_isolated(index: SearchIndex) -> None:
    index.index(JANE, "ws", [SourceFile("secret.py", "jane_private_token = 1")])
    index.index(OMAR, "ws", [SourceFile("mine.py", "omar_thing = 1")])
    assert index.search(OMAR, "jane_private_token") == []
    assert [h.path for h in index.search(OMAR, "omar_thing")] == ["mine.py"]
    assert [w.files for w in index.workspaces(OMAR)] == [1]
    index.index(OMAR, "ws", [], force_rebuild=True)
    assert [h.path for h in index.search(JANE, "jane_private_token")] == ["secret.py"]


def test_workspace_summaries(index: SearchIndex) -> None:
    index.index(JANE, "repo", [
        SourceFile("a.py", numbered(50)),
        SourceFile("b.py", "x"),
        SourceFile("c.ts", "let y"),
        SourceFile("README", "hello"),
        SourceFile("d.txt", "é", language="markdown"),
    ], name="My Repo")
    [summary] = index.workspaces(JANE)
    assert summary.to_json() | {"last_indexed": "-"} == {
        "workspace_id": "repo",
        "name": "My Repo",
        "files": 5,
        "chunks": 6,
        "bytes": len(numbered(50)) + 1 + 5 + 5 + 2,
        "languages": {"python": 2, "markdown": 1, "plaintext": 1, "typescript": 1},
        "last_indexed": "-",
    }
    assert summary.last_indexed.endswith("Z") and "T" in summary.last_indexed
    index.index(JANE, "repo", [SourceFile("e.py", "z")])  # the name is kept
    assert index.workspaces(JANE, "repo")[0].name == "My Repo"
    assert index.workspaces(JANE, "missing") == []


def test_the_index_survives_reopening(tmp_path: Path) -> None:
    first = SearchIndex(tmp_path)
    first.index(JANE, "ws", [SourceFile("a.py", "needle")])
    first.close()
    second = SearchIndex(tmp_path)
    try:
        assert [h.path for h in second.search(JANE, "needle")] == ["a.py"]
    finally:
        second.close()
    assert (tmp_path / DB_FILENAME).stat().st_mode & 0o777 == 0o600


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / DB_FILENAME) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer oropendola-ls"):
        SearchIndex(tmp_path)


def test_a_large_batch_is_one_call(index: SearchIndex) -> None:
    files = [
        SourceFile(f"pkg{n // 100}/mod_{n}.py",
                   "\n".join(f"value_{n}_{i} = {i}" for i in range(50)))
        for n in range(200)
    ]
    outcome = index.index(JANE, "big", files)
    assert (outcome.indexed, outcome.chunks) == (200, 400)
    [hit] = index.search(JANE, "value_123_45", limit=1)
    assert (hit.path, hit.start_line, hit.end_line) == ("pkg1/mod_123.py", 46, 46)
