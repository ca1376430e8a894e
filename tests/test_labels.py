from pathlib import Path

import pytest

from imcaption.captcha.labels import LabelFileError, LabelRow, read_labels, write_labels


def test_round_trip_keeps_order_and_words(tmp_path: Path) -> None:
    rows = [LabelRow(10, "www"), LabelRow(2, "thus"), LabelRow(0, "cio")]
    path = tmp_path / "labels.txt"
    write_labels(path, rows)
    assert path.read_text() == "a0 cio\na2 thus\na10 www\n"
    assert read_labels(path) == sorted(rows, key=lambda r: r.index)


def test_ids_sort_numerically_not_as_text(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("a10 ten\na9 nine\na100 hund\n")
    assert [r.index for r in read_labels(path)] == [9, 10, 100]


def test_words_that_csv_readers_turn_into_missing_values_survive(tmp_path: Path) -> None:
    words = ["nan", "null", "true", "none", "false", "nat", "na"[:2] + "n"]
    path = tmp_path / "labels.txt"
    path.write_text("".join(f"a{i} {w}\n" for i, w in enumerate(words)))
    assert [r.word for r in read_labels(path)] == words


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("a0 thus\na1\n", 2, "expected '<id> <word>'"),
        ("a0 thus\na1  two\n", 2, "expected '<id> <word>'"),
        ("b0 thus\n", 1, "not an image id"),
        ("a0 thus\na1 Tied\n", 2, "3-5 lowercase letters"),
        ("a0 thus\na1 toolong\n", 2, "3-5 lowercase letters"),
        ("a0 thus\na1 ab\n", 2, "3-5 lowercase letters"),
        ("a0 thus\na1 tied\na0 jam\n", 3, "duplicate id a0 (first on line 1)"),
    ],
)
def test_bad_lines_are_rejected_naming_file_and_line(tmp_path: Path, content: str, line: int, fragment: str) -> None:
    path = tmp_path / "spec_train_val.txt"
    path.write_text(content)
    with pytest.raises(LabelFileError) as err:
        read_labels(path)
    assert f"{path}:{line}:" in str(err.value)
    assert fragment in str(err.value)


def test_answer_files_may_hold_unreadable_words_when_not_checked(tmp_path: Path) -> None:
    path = tmp_path / "answers.txt"
    path.write_text("a0 -\na1 ab\n")
    assert [r.word for r in read_labels(path, check_words=False)] == ["-", "ab"]
