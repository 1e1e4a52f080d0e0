"""The language server's document model: positions in every encoding, incremental edits,
clamping, binary detection."""

from __future__ import annotations

import random
import re

import pytest

from prefloop.lsp.documents import UTF8, UTF16, UTF32, Document, Edit, minimal_edit

TEXT = "a = 1\ns = '😀'; größe = 2\r\nlast"


def line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", text))]


@pytest.mark.parametrize(
    ("encoding", "character", "offset"),
    [
        (UTF16, 5, 6 + 5),  # after the quote, before the emoji
        (UTF16, 7, 6 + 6),  # after the emoji: two UTF-16 units
        (UTF8, 9, 6 + 6),  # after the emoji: four UTF-8 bytes
        (UTF32, 6, 6 + 6),
        (UTF8, 18, 6 + 13),  # "ö" and "ß" are two bytes each
        (UTF16, 14, 6 + 13),
    ],
)
def test_positions_in_each_encoding(encoding: str, character: int, offset: int) -> None:
    doc = Document("file:///t.py", TEXT, encoding=encoding)
    assert doc.offset_at(1, character) == offset
    assert doc.position_at(offset) == (1, character)


def test_a_position_inside_a_character_counts_as_before_it() -> None:
    doc = Document("file:///t.py", TEXT, encoding=UTF8)
    assert doc.offset_at(1, 7) == doc.offset_at(1, 5) == 6 + 5


def test_positions_out_of_range_are_clamped() -> None:
    doc = Document("file:///t.py", TEXT)
    assert doc.offset_at(0, 500) == 5  # end of "a = 1", before the line break
    assert doc.offset_at(1, 10_000) == TEXT.index("\r\n")  # CRLF is not part of the line
    assert doc.offset_at(99, 0) == len(TEXT)
    assert doc.offset_at(-1, 3) == 0
    assert doc.position_at(10**9) == (2, 4)
    assert doc.line_count == 3
    assert doc.line_text(1) == "s = '😀'; größe = 2"


def test_incremental_edits_and_their_offsets() -> None:
    doc = Document("file:///t.py", "one\ntwo\nthree\n", encoding=UTF16)
    edit = doc.apply("2", (1, 0, 1, 3))
    assert edit == Edit(4, 7, "2")
    assert doc.text == "one\n2\nthree\n"
    edit = doc.apply("X\nY", (0, 3, 2, 0))  # across lines
    assert edit == Edit(3, 6, "X\nY")
    assert doc.text == "oneX\nYthree\n"
    assert doc.line_at(doc.text.index("Y")) == 1
    reversed_range = doc.apply("", (1, 3, 1, 1))
    assert reversed_range == Edit(6, 8, "")
    assert doc.revision == 3


def test_whole_document_change_becomes_a_minimal_edit() -> None:
    doc = Document("file:///t.py", "def f():\n    return 1\n")
    edit = doc.apply("def f():\n    return 42\n")
    assert edit == Edit(20, 21, "42")
    assert minimal_edit("aaaa", "aa") == Edit(2, 4, "")
    assert minimal_edit("", "abc") == Edit(0, 0, "abc")
    assert minimal_edit("same", "same") == Edit(4, 4, "")


def test_line_index_stays_right_through_random_edits() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b", "\n", "\r", "\r\n", "é", "😀", " "]
    text = "".join(rng.choice(alphabet) for _ in range(200))
    doc = Document("file:///t.py", text, encoding=UTF16)
    for _ in range(1500):
        start = rng.randint(0, len(text))
        end = rng.randint(start, min(len(text), start + 6))
        insert = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
        a, b = doc.position_at(start), doc.position_at(end)
        edit = doc.apply(insert, (a[0], a[1], b[0], b[1]))
        text = text[: edit.start] + insert + text[edit.end :]
        assert doc.text == text
        assert doc._starts == line_starts(text)


def test_binary_content_and_windows() -> None:
    doc = Document("file:///b.bin", "ELF\x00\x01rest")
    assert doc.is_binary()
    doc.apply("", (0, 3, 0, 5))
    assert not doc.is_binary()
    text = Document("file:///t.py", "0123456789")
    assert text.window(5, 3, 2) == ("234", "56")
    assert text.window(99, 100, 100) == ("0123456789", "")
