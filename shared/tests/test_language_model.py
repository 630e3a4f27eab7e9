"The character language model (text_recognizer.inference.language_model) and the beam search it weighs."
import json

import numpy as np
import pytest

from text_recognizer.inference.ctc import beam_search_decode
from text_recognizer.inference.language_model import (LANGUAGE_MODEL, START, CharLanguageModel, bits_per_character,
                                                      fusion_weights, load_language_model, ngram_counts,
                                                      save_language_model, wrap_words)
from text_recognizer.metadata import BLANK_INDEX, CHARSET, WEIGHTS_DIR, encode

CORPUS = ["the quick fox", "the queen is quiet", "a quiet quay", "the quill", "quite the question"]


def test_counts_of_two_tiny_texts():
    counts = ngram_counts(["abab", "abc"], order=3)
    model = CharLanguageModel(3, **counts)
    a, b, c = encode("abc")
    assert model.followers((a,))[b] == 3 and model.followers((a,)).sum() == 3
    assert model.followers((START, START))[a] == 2 and model.followers((START, START)).sum() == 2
    assert model.followers((a, b))[[a, c]].tolist() == [1, 1] and model.followers(()).sum() == 7
    assert model.followers((c, c)).sum() == 0  # never seen


def test_probabilities_are_a_distribution_over_the_characters():
    lm = CharLanguageModel.fit(CORPUS, order=4)
    for text in ("", "the q", "zzz", "Qu!"):
        p = lm(tuple(encode(text)))
        assert p.shape == (len(CHARSET),) and abs(p.sum() - 1) < 1e-9
        assert p[BLANK_INDEX] == 0 and (np.delete(p, BLANK_INDEX) > 0).all()  # an unseen character is unlikely, not vetoed
    assert CHARSET[lm(tuple(encode("the q"))).argmax()] == "u"
    assert bits_per_character(lm, ["the quiet"]) < bits_per_character(lm, ["xzv jkw"])


def test_order_must_be_positive():
    with pytest.raises(ValueError, match="order=0"):
        CharLanguageModel.fit(CORPUS, order=0)


def ambiguous(text: str, doubtful: int, other: str, share: float = 0.55) -> np.ndarray:
    "Per-step probabilities that spell `text`, with a blank between characters, where character `doubtful` looks more like `other`."
    steps = []
    for k, index in enumerate(encode(text)):
        step = np.full(len(CHARSET), 1e-4)
        if k == doubtful:
            step[encode(other)[0]], step[index] = share, 0.9 - share
        else:
            step[index] = 0.9
        blank = np.full(len(CHARSET), 1e-4)
        blank[BLANK_INDEX] = 0.9
        steps += [step / step.sum(), blank / blank.sum()]
    return np.array(steps)


def test_the_language_model_settles_what_the_ink_leaves_open():
    lm = CharLanguageModel.fit(CORPUS, order=4)
    probs = ambiguous("the quill", doubtful=5, other="v")  # "the qvill" by a nose
    assert beam_search_decode(probs)[0] == "the qvill"
    assert beam_search_decode(probs, lm=lm)[0] == "the quill"
    clear = ambiguous("the quill", doubtful=5, other="v", share=0.895)  # the ink is sure (u at 0.5 %): English does not overrule it
    assert beam_search_decode(clear, lm=lm)[0] == "the qvill"


def test_a_neutral_language_model_changes_nothing():
    rng = np.random.default_rng(0)
    uniform = np.where(np.arange(len(CHARSET)) == BLANK_INDEX, 0.0, 1 / (len(CHARSET) - 1))
    neutral_bonus = 0.3 * np.log(len(CHARSET) - 1)  # e ** bonus cancels uniform ** 0.3
    for _ in range(5):
        logits = rng.normal(size=(60, len(CHARSET))) * 2
        logits[np.arange(60), rng.choice([0, 0, 5, 40], size=60)] += 7
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        plain = beam_search_decode(probs)
        weighed = beam_search_decode(probs, lm=lambda prefix: uniform, lm_weight=0.3, char_bonus=neutral_bonus)
        assert weighed[0] == plain[0] and weighed[1] == pytest.approx(plain[1], rel=1e-6)


def test_save_and_load(tmp_path):
    lm = CharLanguageModel.fit(CORPUS, order=3)
    again = load_language_model(save_language_model(lm, tmp_path / "lm.npz"))
    assert again.order == 3 and np.array_equal(again(tuple(encode("qu"))), lm(tuple(encode("qu"))))
    (tmp_path / "damaged.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ValueError, match="not a character language model"):
        load_language_model(tmp_path / "damaged.npz")
    with pytest.raises(ValueError, match="not a character language model"):
        load_language_model(tmp_path / "missing.npz")
    arrays = dict(np.load(tmp_path / "lm.npz"))
    np.savez(tmp_path / "foreign.npz", **{**arrays, "charset": np.array(CHARSET[:-1] + ["€"])})
    with pytest.raises(ValueError, match="another character set"):
        load_language_model(tmp_path / "foreign.npz")


def test_the_package_model_is_recorded_and_knows_english():
    lm = load_language_model()
    info = json.loads((WEIGHTS_DIR / f"{LANGUAGE_MODEL}.json").read_text())
    assert lm.order == info["order"] and len(lm.counts) == info["counts"]
    assert info["bits_per_character_val"] < 3.0
    assert bits_per_character(lm, ["The weather is quite nice today, and we shall go for a walk."]) < 3.0
    assert bits_per_character(lm, ["Xq7 zJ#k vv9Q pw"]) > 5.0


def test_threads_share_a_model_whose_cache_keeps_clearing():
    from concurrent.futures import ThreadPoolExecutor
    counts = ngram_counts(CORPUS, order=4)
    lm, reference = CharLanguageModel(4, **counts, cache_size=3), CharLanguageModel(4, **counts)
    prefixes = [tuple(encode(text[:k])) for text in CORPUS for k in range(len(text))]
    read = lambda _: [lm(prefix) for prefix in prefixes]
    with ThreadPoolExecutor(4) as pool:
        for probabilities in pool.map(read, range(8)):
            assert all(np.array_equal(p, reference(q)) for p, q in zip(probabilities, prefixes))


def test_cached_factors_read_what_the_plain_model_reads():
    rng = np.random.default_rng(3)
    counts = ngram_counts(CORPUS, order=4)
    for cache_size in (50_000, 4):  # 4: the factor cache (2 vectors) keeps clearing
        lm = CharLanguageModel(4, **counts, cache_size=cache_size)
        plain = lambda prefix, lm=lm: lm(prefix)  # no `factors`: the beam computes them for every line anew
        for _ in range(6):
            logits = rng.normal(size=(50, len(CHARSET))) * 2
            logits[np.arange(50), rng.choice([0, 0, 5, 40, 45], size=50)] += 6
            probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            for weight, bonus in ((0.3, 2.0), (0.6, 1.0)):
                cached = beam_search_decode(probs, lm=lm, lm_weight=weight, char_bonus=bonus)
                assert cached == beam_search_decode(probs, lm=plain, lm_weight=weight, char_bonus=bonus)
        assert 0 < len(lm.factor_cache) <= max(cache_size // 2, 1)


def test_threads_share_cached_factors():
    from concurrent.futures import ThreadPoolExecutor
    counts = ngram_counts(CORPUS, order=4)
    lm, reference = CharLanguageModel(4, **counts, cache_size=6), CharLanguageModel(4, **counts)
    prefixes = [tuple(encode(text[:k])) for text in CORPUS for k in range(len(text))]
    read = lambda _: [lm.factors(prefix, 0.3, 2.0) for prefix in prefixes]
    with ThreadPoolExecutor(4) as pool:
        for factors in pool.map(read, range(8)):
            assert all(np.array_equal(f, reference(q) ** 0.3 * np.exp(2.0)) for f, q in zip(factors, prefixes))


def test_wrapped_lines_keep_every_word_in_order_within_their_widths():
    words = " ".join(CORPUS * 20).split()
    for seed in range(3):
        lines = wrap_words(words, 6, 20, seed=seed)
        assert " ".join(lines).split() == words
        assert all(len(line) <= 20 or " " not in line for line in lines) and min(map(len, lines)) >= 1
    assert wrap_words(words, 6, 20, seed=0) != wrap_words(words, 6, 20, seed=1)
    assert wrap_words(["extraordinarily", "long"], 4, 6) == ["extraordinarily", "long"]  # too long: a line of its own
    assert wrap_words([]) == []


def test_the_package_model_starts_a_text_where_a_line_starts():
    "Counted on wrapped lines: a line mostly starts inside a sentence, so a glyph between i and I is read as i."
    lm, fusion = load_language_model(), fusion_weights()
    capitals = np.array([c.isupper() for c in CHARSET])
    assert 0.05 < lm(())[capitals].sum() < 0.3
    assert beam_search_decode(ambiguous("in the house", 0, "I", share=0.45), lm=lm, **fusion)[0] == "in the house"
    assert beam_search_decode(ambiguous("In the house", 0, "i", share=0.09), lm=lm, **fusion)[0] == "In the house"
    info = json.loads((WEIGHTS_DIR / f"{LANGUAGE_MODEL}.json").read_text())
    assert fusion == {"lm_weight": info["lm_weight"], "char_bonus": info["char_bonus"]} and "wrap_words" in info["trained_on"]
