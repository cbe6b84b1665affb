"""Strict custom-request params: what is accepted, and the -32602 messages for the rest."""

from __future__ import annotations

import attrs
import pytest
from pygls.exceptions import JsonRpcInvalidParams

from oropendola_ls.features.params import parse_params


@attrs.frozen
class Example:
    query: str = ""
    limit: int | None = None


@pytest.mark.parametrize("empty", [None, {}, []])
def test_no_params_an_empty_object_and_luas_empty_table_mean_the_defaults(empty: object) -> None:
    # Neovim's vim.json encodes an empty Lua table `{}` as `[]`.
    assert parse_params("x/y", empty, Example) == Example()


@pytest.mark.parametrize(("raw", "message"), [
    ([1], "x/y: params must be an object"),
    ("query", "x/y: params must be an object"),
    ({"query": 3}, "x/y: field 'query' must be a string"),
    ({"limit": True}, "x/y: field 'limit' must be a number or null"),
])
def test_anything_else_is_refused_naming_the_problem(raw: object, message: str) -> None:
    with pytest.raises(JsonRpcInvalidParams, match=message):
        parse_params("x/y", raw, Example)
