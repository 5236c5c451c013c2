"""Bootstrap CIs on synthetic paired data; SQuAD F1 / exact match on known answers."""

import math

import numpy as np
import pytest

from eval.offline_metrics import exact_match, normalize_answer, token_f1
from eval.stats import mean_ci, paired_diff, significant


def test_clear_improvement_has_ci_above_zero():
    rng = np.random.default_rng(1)
    a = rng.uniform(0.2, 0.6, 60)
    b = a + 0.2 + rng.normal(0, 0.05, 60)
    d = paired_diff(list(a), list(b))
    assert d["n"] == 60 and d["diff"] == pytest.approx(float((b - a).mean()))
    assert 0 < d["ci_low"] < d["diff"] < d["ci_high"]
    assert significant(d) == 1
    assert d["wins"] > 50


def test_noise_gives_a_ci_straddling_zero():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, 80)
    b = a + rng.normal(0, 0.2, 80)
    b = b - (b - a).mean()  # noise with exactly zero mean difference
    d = paired_diff(list(a), list(b))
    assert d["ci_low"] < 0 < d["ci_high"]
    assert significant(d) == 0


def test_worse_arm_has_ci_below_zero_and_order_matters():
    a = [1.0, 0.9, 0.8, 1.0, 0.7, 0.9, 1.0, 0.8]
    b = [x - 0.5 for x in a]
    assert significant(paired_diff(a, b)) == -1
    assert significant(paired_diff(b, a)) == 1


def test_bootstrap_is_deterministic_and_pairs_with_missing_values_are_dropped():
    a = [0.1, 0.5, None, 0.3, float("nan"), 0.9]
    b = [0.2, 0.7, 0.4, None, 0.5, 0.8]
    d1, d2 = paired_diff(a, b), paired_diff(a, b)
    assert d1 == d2
    assert d1["n"] == 3  # rows 0, 1, 5
    assert d1["diff"] == pytest.approx(((0.2 - 0.1) + (0.7 - 0.5) + (0.8 - 0.9)) / 3)


def test_identical_arms_give_a_zero_width_ci_and_empty_input_gives_none():
    d = paired_diff([0.3, 0.5, 0.9], [0.3, 0.5, 0.9])
    assert (d["diff"], d["ci_low"], d["ci_high"], d["ties"]) == (0.0, 0.0, 0.0, 3)
    assert paired_diff([None], [0.2])["diff"] is None
    assert significant(paired_diff([], [])) == 0
    m = mean_ci([0.0, 1.0, 1.0, 1.0, None])
    assert m["n"] == 4 and m["mean"] == 0.75 and 0 <= m["ci_low"] <= 0.75 <= m["ci_high"] <= 1
    assert mean_ci([None, float("nan")])["mean"] is None


def test_paired_lengths_must_match():
    with pytest.raises(ValueError):
        paired_diff([1.0], [1.0, 2.0])


@pytest.mark.parametrize(
    "pred,ref,f1,em",
    [
        ("26 days per leave year.", "26 days per leave year", 1.0, 1.0),  # punctuation ignored
        ("The Cat!", "cat", 1.0, 1.0),  # case and articles ignored
        ("purple elephants", "26 days", 0.0, 0.0),  # disjoint
        ("the cat sat", "cat sat on mat", 2 / 3, 0.0),  # P=1, R=1/2
        ("", "", 1.0, 1.0),
        ("", "something", 0.0, 0.0),
    ],
)
def test_token_f1_and_exact_match_on_known_answers(pred, ref, f1, em):
    assert token_f1(pred, ref) == pytest.approx(f1)
    assert exact_match(pred, ref) == em


def test_normalize_answer_is_squad_style():
    assert normalize_answer("  An Apple, the  pear; a plum. ") == "apple pear plum"
    assert math.isclose(token_f1("apple apple", "apple"), 2 * 0.5 * 1 / 1.5)
