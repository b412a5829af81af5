"""The defining property of each aggregation rule, the 50%-attacker scenario, input checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fl import contract
from fl.aggregation import (
    RULES,
    AggregationResult,
    centered_clipping,
    fedavg,
    fltrust,
    get_rule,
    median,
    multi_krum,
    trimmed_mean,
    weighted_median_1d,
)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def run(name: str, updates: np.ndarray, weights: np.ndarray, **kw: Any) -> AggregationResult:
    """Call a rule by name, giving fltrust a reference when the test gave none."""
    if RULES[name].needs_reference and "reference" not in kw:
        kw["reference"] = updates.mean(axis=0)
    return RULES[name](updates, weights, **kw)


def honest_cluster(rng: np.random.Generator, n: int, d: int, spread: float = 0.1) -> np.ndarray:
    direction = rng.normal(0.0, 1.0, d)
    return direction + rng.normal(0.0, spread, (n, d))


# ------------------------------------------------------------------------- registry


def test_registry_holds_every_rule_and_the_default() -> None:
    assert set(RULES) == {
        "fedavg",
        "median",
        "trimmed-mean",
        "multi-krum",
        "centered-clipping",
        "fltrust",
    }
    assert contract.DEFAULT_RULE in RULES
    assert all(rule.name == name for name, rule in RULES.items())
    assert [n for n, r in RULES.items() if r.needs_reference] == ["fltrust"]
    assert RULES["centered-clipping"].reference_kind == "previous-aggregate"
    assert RULES["fltrust"].options == {
        "reference": None,
        "min_trust": 0.0,
        "magnitude": "trusted-median",
    }
    assert RULES["trimmed-mean"].options == {"beta": 0.2}


def test_get_rule_names_the_choices() -> None:
    assert get_rule("median") is RULES["median"]
    with pytest.raises(ValueError, match="choose one of: fedavg, median"):
        get_rule("krum")


# --------------------------------------------------------------------------- fedavg


def test_fedavg_mixes_two_rows_by_weight_exactly() -> None:
    u = np.array([[1.0, 0.0, 4.0], [0.0, 1.0, 8.0]])
    result = fedavg(u, np.array([3.0, 1.0]))
    np.testing.assert_allclose(result.update, [0.75, 0.25, 5.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(result.effective_weights, [0.75, 0.25])


def test_fedavg_equals_np_average_and_keeps_float32() -> None:
    rng = np.random.default_rng(0)
    u = rng.normal(size=(7, 50)).astype(np.float32)
    w = rng.uniform(0.1, 5.0, 7)
    result = fedavg(u, w)
    assert result.update.dtype == np.float32
    np.testing.assert_allclose(
        result.update, np.average(u, axis=0, weights=w), rtol=1e-5, atol=1e-6
    )


# --------------------------------------------------------------------------- median


@pytest.mark.parametrize("n", [1, 3, 4, 9, 10])
def test_median_with_equal_weights_is_np_median(n: int) -> None:
    u = np.random.default_rng(n).normal(size=(n, 40))
    result = median(u, np.full(n, 0.1))  # 0.1: inexact in binary
    np.testing.assert_array_equal(result.update, np.median(u, axis=0))
    assert result.effective_weights.sum() == pytest.approx(1.0)


def test_median_follows_a_row_holding_more_than_half_the_weight() -> None:
    u = np.random.default_rng(1).normal(size=(5, 30))
    result = median(u, np.array([1.0, 1.0, 4.1, 1.0, 1.0]))
    np.testing.assert_array_equal(result.update, u[2])
    np.testing.assert_allclose(result.effective_weights, [0, 0, 1, 0, 0])


def test_weighted_median_1d_is_the_weight_half_point() -> None:
    assert weighted_median_1d([1.0, 2.0, 3.0, 10.0], [1, 1, 1, 1]) == 2.5
    assert weighted_median_1d([1.0, 2.0, 3.0, 10.0], [1, 1, 1, 3]) == 6.5  # exact half
    assert weighted_median_1d([1.0, 2.0, 3.0, 10.0], [1, 1, 1, 3.5]) == 10.0
    assert weighted_median_1d([4.0, 1.0, 3.0, 2.0], [6, 3, 2, 5]) == 2.5  # 3 + 5 = 16 / 2
    assert weighted_median_1d([4.0, 1.0, 3.0, 2.0], [6e9, 3e9, 2e9, 5e9]) == 2.5
    assert weighted_median_1d([1.0, 2.0, 3.0], [7, 36, 43]) == 2.5  # 7/86 + 36/86 != 0.5
    assert weighted_median_1d([5.0, 1.0, 9.0], [0, 1, 1]) == 5.0  # zero weight ignored


@pytest.mark.parametrize("name", ["median", "trimmed-mean"])
def test_per_coordinate_rules_ignore_a_minority_of_huge_outliers(name: str) -> None:
    rng = np.random.default_rng(2)
    honest = honest_cluster(rng, 8, 60)
    outliers = rng.normal(0.0, 1e6, (2, 60))
    u = np.vstack([honest, outliers])
    result = run(name, u, np.ones(10))
    assert (result.update >= honest.min(axis=0)).all()
    assert (result.update <= honest.max(axis=0)).all()
    assert result.effective_weights[8:].sum() < 0.2
    assert np.linalg.norm(fedavg(u, np.ones(10)).update - honest.mean(axis=0)) > 1e4


# --------------------------------------------------------------------- trimmed mean


def test_trimmed_mean_with_beta_zero_is_fedavg() -> None:
    rng = np.random.default_rng(3)
    u, w = rng.normal(size=(9, 70)), rng.uniform(0.0, 3.0, 9)
    result = trimmed_mean(u, w, beta=0.0)
    np.testing.assert_allclose(result.update, fedavg(u, w).update, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.effective_weights, w / w.sum(), rtol=1e-12)


def test_trimmed_mean_cuts_weight_not_heads_with_partial_boundary() -> None:
    # one coordinate, values 0..4 with weights 1,1,1,1,6 (total 10), beta 0.25: cut 2.5 from
    # each end. Low end: 0, 1 and half of 2 go. High end: 2.5 of the 6 on value 4 go.
    # Kept: 0.5 x 2, 1 x 3, 3.5 x 4 -> (1 + 3 + 14) / 5 = 3.6
    u = np.arange(5.0)[:, None]
    result = trimmed_mean(u, np.array([1.0, 1.0, 1.0, 1.0, 6.0]), beta=0.25)
    assert result.update[0] == pytest.approx(3.6)
    np.testing.assert_allclose(result.effective_weights, [0, 0, 0.1, 0.2, 0.7])


# ----------------------------------------------------------------------- multi-krum


def test_multi_krum_selects_the_honest_cluster() -> None:
    rng = np.random.default_rng(4)
    honest = honest_cluster(rng, 7, 80)
    outliers = honest.mean(axis=0) + rng.normal(0.0, 5.0, (3, 80))
    u = np.vstack([outliers[:1], honest, outliers[1:]])
    w = rng.uniform(1.0, 3.0, 10)
    result = multi_krum(u, w)  # n = 10: f = 3, m = 7
    assert result.diagnostics["f"] == 3
    assert result.diagnostics["selected"].tolist() == list(range(1, 8))
    assert (result.effective_weights[[0, 8, 9]] == 0).all()
    np.testing.assert_allclose(result.update, np.average(honest, axis=0, weights=w[1:8]))


def test_multi_krum_with_m_one_is_krum() -> None:
    u = np.array([[0.0], [1.0], [1.1], [1.2], [50.0]])
    result = multi_krum(u, np.ones(5), f=1, m=1)  # neighbours n - f - 2 = 2
    np.testing.assert_allclose(result.update, [1.1])


def test_multi_krum_ignores_zero_weight_rows() -> None:
    u = np.array([[0.0], [1.0], [1.1], [1.2], [50.0]])
    w = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    result = multi_krum(u, w)
    assert result.effective_weights[4] == 0
    assert np.isnan(result.diagnostics["scores"][4])


def test_multi_krum_distances_survive_a_large_common_component_in_float32() -> None:
    rng = np.random.default_rng(5)
    common = np.full(1000, 1e3)
    honest = common + rng.normal(0.0, 1e-2, (6, 1000))
    outlier = common + rng.normal(0.0, 1e-1, (1, 1000))  # 10x the spread, same common part
    u = np.vstack([honest, outlier]).astype(np.float32)
    assert multi_krum(u, np.ones(7), f=1).effective_weights[6] == 0


# ---------------------------------------------------------------- centered clipping


def test_centered_clipping_bounds_a_huge_outliers_influence() -> None:
    rng = np.random.default_rng(6)
    honest = honest_cluster(rng, 9, 50)
    u = np.vstack([honest, rng.normal(0.0, 1e6, (1, 50))])
    honest_mean = honest.mean(axis=0)
    spread = np.median(np.linalg.norm(honest - honest_mean, axis=1))
    result = centered_clipping(u, np.ones(10))
    assert np.linalg.norm(result.update - honest_mean) < 0.5 * spread
    assert result.effective_weights[9] < 1e-4
    assert np.linalg.norm(fedavg(u, np.ones(10)).update - honest_mean) > 1e4


def test_centered_clipping_starts_from_the_reference_and_moves_at_most_tau_per_step() -> None:
    rng = np.random.default_rng(7)
    u = honest_cluster(rng, 6, 20)
    reference = rng.normal(0.0, 10.0, 20)
    result = centered_clipping(u, np.ones(6), reference=reference, tau=0.01, iterations=3)
    assert np.linalg.norm(result.update - reference) <= 0.03 + 1e-12
    from_zero = centered_clipping(u, np.ones(6), tau=0.01, iterations=3)
    assert np.linalg.norm(from_zero.update) <= 0.03 + 1e-12
    # with a good reference (last round's aggregate) it lands on the honest mean at once
    near = centered_clipping(u, np.ones(6), reference=u.mean(axis=0), iterations=1)
    far = centered_clipping(u, np.ones(6), reference=-50 * u.mean(axis=0), iterations=1)
    target = u.mean(axis=0)
    assert np.linalg.norm(near.update - target) < 0.1 * np.linalg.norm(far.update - target)


# -------------------------------------------------------------------------- fltrust


def sign_flip_setup(
    n_honest: int, n_attackers: int, attacker_stake_share: float, c: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Honest updates around a direction; attackers send ``-c x honest mean`` (colluding)."""
    rng = np.random.default_rng(8)
    d = 200
    direction = rng.normal(0.0, 1.0, d)
    honest = direction + rng.normal(0.0, 1.0, (n_honest, d))
    attackers = np.tile(-c * honest.mean(axis=0), (n_attackers, 1))
    honest_w = rng.uniform(1.0, 5.0, n_honest)
    attacker_w = np.full(
        n_attackers,
        honest_w.sum() * attacker_stake_share / (1 - attacker_stake_share) / n_attackers,
    )
    root_update = direction + rng.normal(0.0, 1.0, d)  # the server's own noisy update
    return (
        np.vstack([honest, attackers]),
        np.concatenate([honest_w, attacker_w]),
        root_update,
        honest.mean(axis=0),
    )


def test_fltrust_zeroes_sign_flippers_holding_half_the_nodes_and_half_the_stake() -> None:
    u, w, root, honest_mean = sign_flip_setup(5, 5, attacker_stake_share=0.5)
    assert w[5:].sum() == pytest.approx(w[:5].sum())
    result = fltrust(u, w, reference=root)
    assert (result.effective_weights[5:] == 0).all()
    assert result.flagged.tolist() == [False] * 5 + [True] * 5
    assert cosine(result.update, honest_mean) > 0.9


@pytest.mark.parametrize(
    "name", ["fedavg", "median", "trimmed-mean", "multi-krum", "centered-clipping"]
)
def test_head_count_rules_follow_half_the_nodes_and_stake_sign_flipping(name: str) -> None:
    u, w, _, honest_mean = sign_flip_setup(5, 5, attacker_stake_share=0.5)
    assert cosine(run(name, u, w).update, honest_mean) < 0


def test_fltrust_survives_a_large_majority_of_nodes_and_stake() -> None:
    u, w, root, honest_mean = sign_flip_setup(3, 7, attacker_stake_share=0.8)
    result = fltrust(u, w, reference=root)
    assert (result.effective_weights[3:] == 0).all()
    assert cosine(result.update, honest_mean) > 0.9


def test_fltrust_scaled_up_updates_do_not_dominate() -> None:
    rng = np.random.default_rng(9)
    root = rng.normal(0.0, 1.0, 100)
    u = root + rng.normal(0.0, 1.0, (6, 100))
    boosted = u.copy()
    boosted[2] *= 1e4
    # The paper's rescaling to |g0|: boosting changes nothing at all.
    plain, attacked = (
        fltrust(u, np.ones(6), reference=root, magnitude="reference"),
        fltrust(boosted, np.ones(6), reference=root, magnitude="reference"),
    )
    np.testing.assert_allclose(attacked.update, plain.update, rtol=1e-9)
    np.testing.assert_allclose(attacked.effective_weights, plain.effective_weights, rtol=1e-9)
    assert np.linalg.norm(attacked.update) <= np.linalg.norm(root) * (1 + 1e-12)
    assert np.linalg.norm(fedavg(boosted, np.ones(6)).update) > 1e3 * np.linalg.norm(root)
    # Our default clips to the trusted median norm: the boosted row is cut back to it.
    plain, attacked = (
        fltrust(u, np.ones(6), reference=root),
        fltrust(boosted, np.ones(6), reference=root),
    )
    honest_norms = np.linalg.norm(u, axis=1)
    assert np.linalg.norm(attacked.update) <= honest_norms.max()
    assert attacked.diagnostics["magnitude"] <= honest_norms.max()
    assert np.linalg.norm(attacked.update - plain.update) < 0.2 * np.linalg.norm(plain.update)


def test_fltrust_gives_free_riders_zero_trust() -> None:
    rng = np.random.default_rng(10)
    root = rng.normal(0.0, 1.0, 30)
    u = np.vstack([root + rng.normal(0.0, 0.5, (3, 30)), np.zeros((2, 30))])
    result = fltrust(u, np.array([1.0, 1.0, 1.0, 50.0, 50.0]), reference=root)
    assert (result.effective_weights[3:] == 0).all()
    assert result.effective_weights[:3].sum() == pytest.approx(1.0)


def test_fltrust_multiplies_trust_by_stake() -> None:
    root = np.array([1.0, 0.0])
    u = np.array([[1.0, 0.0], [1.0, 1.0]])  # trust 1 and cos 45deg = 0.7071
    result = fltrust(u, np.array([1.0, 2.0]), reference=root)
    t = np.sqrt(0.5)
    np.testing.assert_allclose(result.effective_weights, [1 / (1 + 2 * t), 2 * t / (1 + 2 * t)])
    np.testing.assert_allclose(result.diagnostics["trust"], [1.0, t])


def test_fltrust_without_any_trusted_update_does_not_move() -> None:
    root = np.array([1.0, 1.0, 0.0])
    u = -np.abs(np.random.default_rng(11).normal(size=(4, 3)))
    result = fltrust(u, np.ones(4), reference=root)
    np.testing.assert_array_equal(result.update, np.zeros(3))
    np.testing.assert_array_equal(result.effective_weights, np.zeros(4))
    zero_root = fltrust(np.ones((2, 3)), np.ones(2), reference=np.zeros(3))
    np.testing.assert_array_equal(zero_root.update, np.zeros(3))


def test_fltrust_min_trust_cuts_barely_aligned_attackers() -> None:
    # An adaptive attacker passes the ReLU with a tiny g0 component on top of an unrelated
    # direction; 8 of 10 nodes and 80% of stake do it. min_trust removes them.
    rng = np.random.default_rng(12)
    d = 300
    root = rng.normal(0.0, 1.0, d)
    honest = root + rng.normal(0.0, 1.0, (2, d))
    junk = rng.normal(0.0, 1.0, d)
    junk -= (junk @ root) / (root @ root) * root  # orthogonal to g0
    junk *= np.linalg.norm(root) / np.linalg.norm(junk)
    attackers = np.tile(junk + 0.1 * root, (8, 1))  # cosine with g0 ~ 0.1
    u = np.vstack([honest, attackers])
    w = np.array([1.0, 1.0] + [1.0] * 8)
    plain = fltrust(u, w, reference=root, magnitude="reference")
    cut = fltrust(u, w, reference=root, min_trust=0.2)
    assert (plain.effective_weights[2:] > 0).all()
    assert (cut.effective_weights[2:] == 0).all()
    honest_mean = honest.mean(axis=0)
    assert cosine(plain.update, honest_mean) < 0.9
    assert cosine(cut.update, honest_mean) > 0.99


# ------------------------------------------------------ properties of every rule


@st.composite
def rounds(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    u = rng.normal(0.0, draw(st.sampled_from([1e-3, 1.0, 1e3])), (n, d))
    w = rng.uniform(0.05, 10.0, n)
    reference = rng.normal(0.0, 1.0, d)
    return u, w, reference


def kwargs_for(name: str, reference: np.ndarray) -> dict[str, Any]:
    return {"reference": reference} if RULES[name].reference_kind != "none" else {}


@settings(max_examples=40, deadline=None, database=None)
@given(data=rounds(), name=st.sampled_from(sorted(RULES)), perm_seed=st.integers(0, 1000))
def test_every_rule_is_permutation_invariant(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], name: str, perm_seed: int
) -> None:
    u, w, ref = data
    perm = np.random.default_rng(perm_seed).permutation(len(w))
    base = RULES[name](u, w, **kwargs_for(name, ref))
    permuted = RULES[name](u[perm], w[perm], **kwargs_for(name, ref))
    scale = np.abs(u).max()
    np.testing.assert_allclose(permuted.update, base.update, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(
        permuted.effective_weights, base.effective_weights[perm], rtol=1e-9, atol=1e-12
    )


@settings(max_examples=40, deadline=None, database=None)
@given(
    data=rounds(),
    name=st.sampled_from(sorted(RULES)),
    factor=st.floats(1e-3, 1e3),
)
def test_every_rule_depends_only_on_relative_weights(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], name: str, factor: float
) -> None:
    u, w, ref = data
    base = RULES[name](u, w, **kwargs_for(name, ref))
    scaled = RULES[name](u, w * factor, **kwargs_for(name, ref))
    scale = np.abs(u).max()
    np.testing.assert_allclose(scaled.update, base.update, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(scaled.effective_weights, base.effective_weights, atol=1e-12)


@settings(max_examples=40, deadline=None, database=None)
@given(data=rounds(), name=st.sampled_from(sorted(RULES)))
def test_every_rule_returns_d_values_and_shares_summing_to_one(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], name: str
) -> None:
    u, w, ref = data
    result = RULES[name](u, w, **kwargs_for(name, ref))
    assert result.update.shape == (u.shape[1],)
    assert np.isfinite(result.update).all()
    assert (result.effective_weights >= 0).all()
    total = result.effective_weights.sum()
    # fltrust alone may trust nobody (then it returns the zero update)
    assert total == pytest.approx(1.0) or (name == "fltrust" and total == 0)


@settings(max_examples=40, deadline=None, database=None)
@given(data=rounds(), name=st.sampled_from(sorted(RULES)), pick=st.integers(0, 11))
def test_every_rule_ignores_a_row_with_zero_weight(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], name: str, pick: int
) -> None:
    u, w, ref = data
    if len(w) < 2:
        return
    k = pick % len(w)
    w[k] = 0.0
    u_junk = u.copy()
    u_junk[k] = 1e6  # whatever it sends
    with_row = RULES[name](u_junk, w, **kwargs_for(name, ref))
    without = RULES[name](np.delete(u, k, axis=0), np.delete(w, k), **kwargs_for(name, ref))
    assert with_row.effective_weights[k] == 0
    scale = np.abs(u).max()
    np.testing.assert_allclose(with_row.update, without.update, rtol=1e-9, atol=1e-9 * scale)


@settings(max_examples=30, deadline=None, database=None)
@given(
    n=st.integers(1, 9),
    # no magnitudes whose squares underflow (1e-200): such a row has norm 0 in floating point
    x=st.lists(
        st.floats(-1e3, 1e3).map(lambda v: v if abs(v) > 1e-100 else 0.0), min_size=1, max_size=20
    ).filter(lambda v: any(v)),
    name=st.sampled_from(sorted(RULES)),
)
def test_every_rule_returns_a_unanimous_update(n: int, x: list[float], name: str) -> None:
    row = np.array(x)
    u = np.tile(row, (n, 1))
    kw = kwargs_for(name, -3 * row)  # centered clipping starts far away
    if name == "fltrust":
        kw = {"reference": row}
    result = RULES[name](u, np.arange(1.0, n + 1), **kw)
    np.testing.assert_allclose(result.update, row, rtol=1e-9, atol=1e-9 * np.abs(row).max())


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_gives_the_same_answer_on_float32_as_on_float64(name: str) -> None:
    # Flower ships float32 parameters; the rules keep float32 and must not lose precision
    rng = np.random.default_rng(14)
    u64 = np.vstack([honest_cluster(rng, 15, 5000, spread=0.5), rng.normal(0, 20, (4, 5000))])
    w = rng.integers(100, 600, 19).astype(float)
    kw = kwargs_for(name, rng.normal(0.0, 1.0, 5000))
    r32 = RULES[name](u64.astype(np.float32), w, **kw)
    r64 = RULES[name](u64, w, **kw)
    assert r32.update.dtype == np.float32
    np.testing.assert_allclose(r32.update, r64.update, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(r32.effective_weights, r64.effective_weights, atol=1e-5)


# ------------------------------------------------------------------ input checks

BAD_INPUTS = [
    (np.ones(5), np.ones(5), "2-D array"),
    (np.ones((0, 3)), np.ones(0), r"n = 0"),
    (np.ones((2, 0)), np.ones(2), r"d = 0"),
    (np.ones((3, 4)), np.ones(2), r"shape \(3,\)"),
    (np.ones((3, 4)), np.array([1.0, -1.0, 1.0]), "non-negative"),
    (np.ones((3, 4)), np.array([1.0, np.nan, 1.0]), "finite"),
    (np.ones((3, 4)), np.zeros(3), "all weights are zero"),
    (np.array([[1.0, np.nan], [1.0, 1.0]]), np.ones(2), r"NaN or Inf \(rows \[0\]\)"),
    (np.array([[1.0, 1.0], [np.inf, 1.0]]), np.ones(2), r"NaN or Inf \(rows \[1\]\)"),
    (np.array([["a", "b"]]), np.ones(1), "real numbers"),
]


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize(("updates", "weights", "message"), BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(
    name: str, updates: np.ndarray, weights: np.ndarray, message: str
) -> None:
    kw = {"reference": np.ones(updates.shape[-1])} if RULES[name].needs_reference else {}
    with pytest.raises(ValueError, match=message):
        RULES[name](updates, weights, **kw)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("fltrust", {}, "needs reference"),
        ("fltrust", {"reference": np.ones(3)}, r"reference must have shape \(4,\)"),
        ("fltrust", {"reference": np.full(4, np.nan)}, "reference contains NaN"),
        ("fltrust", {"reference": np.ones(4), "min_trust": 1.5}, "min_trust must be in"),
        ("centered-clipping", {"reference": np.ones(5)}, "reference must have shape"),
        ("centered-clipping", {"tau": 0.0}, "tau must be > 0"),
        ("centered-clipping", {"tau": -1.0}, "tau must be in"),
        ("centered-clipping", {"iterations": 0}, "iterations must be an integer in"),
        ("trimmed-mean", {"beta": 0.5}, r"beta must be in \[0.0, 0.5\)"),
        ("trimmed-mean", {"beta": "x"}, "beta must be a number"),
        ("multi-krum", {"f": 3}, "n > 2f \\+ 2"),
        ("multi-krum", {"f": 1.5}, "f must be an integer"),
        ("multi-krum", {"m": 0}, "m must be an integer in"),
        ("median", {"beta": 0.1}, "rule 'median' has no option"),
        ("fedavg", {"reference": np.ones(4)}, "rule 'fedavg' has no option"),
    ],
)
def test_bad_options_raise_clear_errors(name: str, kwargs: dict[str, Any], message: str) -> None:
    u = np.random.default_rng(13).normal(size=(6, 4))
    with pytest.raises(ValueError, match=message):
        RULES[name](u, np.ones(6), **kwargs)


def test_integer_updates_are_accepted_as_float64() -> None:
    result = median(np.array([[1, 2], [3, 4], [5, 6]]), [1, 1, 1])
    assert result.update.dtype == np.float64
    np.testing.assert_array_equal(result.update, [3.0, 4.0])


def test_fltrust_default_never_inflates_short_honest_updates() -> None:
    # Under DP the root update can be longer or shorter than honest updates; the default
    # keeps trusted updates at (at most) their own, median, size: a trust-weighted mean.
    rng = np.random.default_rng(21)
    root = rng.normal(0.0, 1.0, 50) * 10  # a long reference
    u = np.full((4, 50), 0.0) + root / 20 + rng.normal(0.0, 0.01, (4, 50))
    u[3] = -u[3]  # one sign-flipper
    result = fltrust(u, np.ones(4), reference=root)
    trust = result.diagnostics["trust"]
    expected = (trust[:3, None] * u[:3]).sum(axis=0) / trust[:3].sum()
    np.testing.assert_allclose(result.update, expected, rtol=0, atol=np.linalg.norm(u[0]) * 0.02)
    assert result.effective_weights[3] == 0
    assert np.linalg.norm(result.update) < np.linalg.norm(root) / 10
