"""The special tokens a tokenizer lists, from which serving and the evaluation gate both
pick the prompt template."""

from __future__ import annotations

from typing import Any

import pytest

from prefloop.prompting import TEMPLATES, resolve_template, special_tokens


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """A real word-level tokenizer with one special token and the Qwen FIM markers added."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "def": 1, "return": 2, "<|endoftext|>": 3}
    inner = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=inner, unk_token="<unk>", eos_token="<|endoftext|>"
    )
    fast.add_tokens(["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"], special_tokens=True)
    return fast


def test_special_and_added_tokens_sorted_once(tokenizer: Any) -> None:
    assert special_tokens(tokenizer) == [
        "<unk>",
        "<|endoftext|>",
        "<|fim_middle|>",
        "<|fim_prefix|>",
        "<|fim_suffix|>",
    ]


def test_the_listed_tokens_select_the_template(tokenizer: Any) -> None:
    assert resolve_template("auto", special_tokens(tokenizer)) is TEMPLATES["qwen"]


class _Bare:
    """A tokenizer-like object with neither special nor added tokens."""


class _OnlySpecial:
    all_special_tokens = ("<s>", "</s>", "<s>")


def test_objects_without_the_attributes() -> None:
    assert special_tokens(_Bare()) == []
    assert special_tokens(_OnlySpecial()) == ["</s>", "<s>"]
