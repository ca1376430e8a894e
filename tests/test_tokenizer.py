import pytest
import torch

from imcaption.text.char_tokenizer import END, PAD, START, CharTokenizer


def test_round_trip_of_every_default_word() -> None:
    from imcaption.captcha.vocabulary import default_vocabulary

    tokenizer = CharTokenizer()
    for word in default_vocabulary():
        assert tokenizer.decode(tokenizer.encode(word)) == word


def test_specials_are_reserved_and_decode_stops_at_end() -> None:
    tokenizer = CharTokenizer()
    assert (PAD, START, END) == (0, 1, 2)
    assert tokenizer.vocab_size == 29
    assert tokenizer.encode("abz") == [3, 4, 28]
    assert tokenizer.decode([START, 3, 4, END, 5, PAD]) == "ab"


def test_batch_targets_end_and_pad() -> None:
    targets = CharTokenizer().batch_targets(["abc", "abcde"])
    assert targets.tolist() == [[3, 4, 5, END, PAD, PAD], [3, 4, 5, 6, 7, END]]
    assert targets.dtype == torch.long


def test_unknown_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="'A' is not in the charset"):
        CharTokenizer().encode("cAt")


def test_saved_and_restored() -> None:
    tokenizer = CharTokenizer("xyz", 4)
    assert CharTokenizer.from_dict(tokenizer.to_dict()) == tokenizer
