"Tests of text_recognizer.inference.ctc: greedy and beam-search CTC decoding, character error rate."
import itertools

import numpy as np
import pytest

from text_recognizer.inference.ctc import beam_search_decode, character_error_rate, greedy_decode
from text_recognizer.metadata import BLANK_INDEX, CHARSET, encode


def path_probs(path: str, p: float = 0.9) -> np.ndarray:
    "Probabilities putting `p` on each step's character of `path` ('-' is the blank), the rest spread evenly."
    probs = np.full((len(path), len(CHARSET)), (1 - p) / (len(CHARSET) - 1))
    for t, c in enumerate(path):
        probs[t, BLANK_INDEX if c == "-" else encode(c)[0]] = p
    return probs


@pytest.mark.parametrize("path, text", [("hhe-ll-llo", "hello"), ("hhe-lllo", "helo"), ("--cc-aa-t-", "cat"),
                                        ("a a", "a a"), ("l-l-l", "lll"), ("-", ""), ("------", ""), ("x", "x")])
def test_decoders_collapse_repeats_and_drop_blanks(path, text):
    assert greedy_decode(path_probs(path))[0] == text
    assert beam_search_decode(path_probs(path))[0] == text
    assert beam_search_decode(path_probs(path), beam_width=1)[0] == text


def test_greedy_confidence_is_best_path_probability():
    assert greedy_decode(path_probs("ab", 0.5))[1] == pytest.approx(0.25)
    assert greedy_decode(path_probs("---", 1.0)) == ("", pytest.approx(1.0))


def test_beam_search_sums_paths_where_greedy_fails():
    probs = np.zeros((2, len(CHARSET)))
    probs[:, BLANK_INDEX], probs[:, encode("a")[0]] = 0.6, 0.4
    assert greedy_decode(probs)[0] == ""
    text, p = beam_search_decode(probs)
    assert text == "a" and p == pytest.approx(0.64)


def _collapse(path):
    return "".join(CHARSET[c] for i, c in enumerate(path) if c != BLANK_INDEX and (i == 0 or c != path[i - 1]))


def test_beam_search_matches_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(10):
        probs = rng.dirichlet(np.ones(4) * 0.6, size=5)  # classes: blank, space, '0', '1'
        totals = {}
        for path in itertools.product(range(4), repeat=5):
            text = _collapse(path)
            totals[text] = totals.get(text, 0.0) + np.prod(probs[np.arange(5), path])
        best = max(totals, key=totals.get)
        text, p = beam_search_decode(probs, beam_width=64, prune=0)
        assert text == best and p == pytest.approx(totals[best])


def test_beam_search_with_confident_blank_steps_matches_brute_force():
    rng = np.random.default_rng(4)
    for _ in range(10):
        probs = rng.dirichlet(np.ones(4) * 0.6, size=6)
        sure = rng.choice(6, 3, replace=False)  # steps where only the blank is worth trying (the search's shortcut)
        probs[sure] = [1 - 3e-5, 1e-5, 1e-5, 1e-5]
        totals = {}
        for path in itertools.product(range(4), repeat=6):
            text = _collapse(path)
            totals[text] = totals.get(text, 0.0) + np.prod(probs[np.arange(6), path])
        best = max(totals, key=totals.get)
        text, p = beam_search_decode(probs, beam_width=64, prune=1e-3)
        assert text == best and p == pytest.approx(totals[best], rel=1e-3)


def unsure_path(text: str, p: float) -> np.ndarray:
    "Per-step probabilities of `text` (each character, then a blank) where the right class has only `p`."
    steps = [c for ch in text for c in (CHARSET.index(ch), BLANK_INDEX)]
    probs = np.full((len(steps), len(CHARSET)), (1 - p) / (len(CHARSET) - 1))
    probs[np.arange(len(steps)), steps] = p
    return probs


def test_long_unsure_lines_decode_in_full():
    "1,000 steps at 0.3: any path's probability (about 1e-520) underflows float64; the rescaled beams still read it all."
    text = "hello world " * 41
    probs = unsure_path(text, 0.3)
    assert float(np.prod(probs.max(axis=1))) == 0.0, "the test needs a line whose raw path probability underflows"
    decoded, p = beam_search_decode(probs, beam_width=3)
    assert decoded == text and greedy_decode(probs)[0] == text
    assert 0.0 <= p <= 1.0


def test_beam_probability_sums_paths_on_short_lines():
    "Where the probability is representable it is at least the best single path's and at most 1."
    probs = unsure_path("abc", 0.6)
    text, p = beam_search_decode(probs, beam_width=5)
    best_path = float(np.prod(probs.max(axis=1)))
    assert text == "abc" and best_path < p <= 1.0 and p < 10 * best_path


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((3, 1)), np.zeros((2, 3, 4))])
def test_bad_shapes_are_refused(bad):
    with pytest.raises(ValueError, match="time steps, classes"):
        greedy_decode(bad)
    with pytest.raises(ValueError, match="time steps, classes"):
        beam_search_decode(bad)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search_decode(path_probs("ab"), beam_width=0)


def test_character_error_rate_on_known_strings():
    assert character_error_rate("hello", "hello") == 0
    assert character_error_rate("helo", "hello") == pytest.approx(1 / 5)
    assert character_error_rate("kitten", "sitting") == pytest.approx(3 / 7)
    assert character_error_rate(["kitten", "ab"], ["sitting", "ab"]) == pytest.approx(3 / 9)  # pooled over lines
    assert character_error_rate(["", "xyz"], ["abc", "xyz"]) == pytest.approx(3 / 6)
    assert character_error_rate("abcd", "ab") == pytest.approx(1.0)  # insertions count too


def test_case_folded_character_error_rate():
    assert character_error_rate("Hello World", "hello world") == pytest.approx(2 / 11)
    assert character_error_rate("Hello World", "hello world", ignore_case=True) == 0


def test_character_error_rate_edge_cases():
    assert character_error_rate("", "") == 0 and character_error_rate("a", "") == 1
    with pytest.raises(ValueError, match="pair up"):
        character_error_rate(["a", "b"], ["a"])
