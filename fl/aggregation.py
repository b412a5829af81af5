"""Aggregation rules: turn one round's node updates into one global update.

Every rule is a pure function over

* ``updates``: ``[n, d]`` float array, one row per node, each row the node's update *delta*
  (its new model minus the global model, flattened), and
* ``weights``: ``[n]`` non-negative weights (stake x examples, computed by the caller; the
  rule normalises them),

and returns an :class:`AggregationResult` holding ONE update ``[d]`` (in the dtype of
``updates``: float32 stays float32) and the share each input got in it. A rule that needs a
server-side reference update (or the previous round's aggregate) takes it explicitly as the
keyword argument ``reference``; nothing is global and nothing is carried between calls.

Rules (``RULES``; the names are the CLI / ``SM_RULE`` values):

``fedavg``            stake-weighted mean (McMahan et al. 2017). Not robust.
``median``            weighted coordinate-wise median.
``trimmed-mean``      weighted coordinate-wise trimmed mean, ``beta`` of the weight cut per side.
``multi-krum``        Krum scores, average of the ``m`` best (Blanchard et al. 2017;
                      El Mhamdi et al. 2018).
``centered-clipping`` clip around the previous aggregate (Karimireddy et al. 2021).
``fltrust``           trust bootstrapped from the server's root-data update (Cao et al. 2021).
                      The default (``fl.contract.DEFAULT_RULE``): the only rule here that
                      survives half of the nodes *and* half of the stake attacking.

The per-coordinate rules sort the columns of ``updates`` in blocks of columns (each block
fully vectorised) so that the ``[n, d]`` sort indices never exist at once.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.floating[Any]]
F64Array = NDArray[np.float64]
ReferenceKind = Literal["none", "root-update", "previous-aggregate"]

# Per-coordinate rules sort blocks of about this many elements (n x columns) at a time: large
# enough to amortise the Python overhead, small enough for the temporaries to stay in cache
# (measured flat between 2**14 and 2**17 for n = 10..100, d = 1.2M; slower above).
_BLOCK_ELEMENTS = 1 << 15
# Streaming passes (Gram matrix, distances to a centre) work on blocks of about this many
# elements: no [n, d] temporary (page-faulting a fresh 480 MB array costs more than the
# arithmetic on a shared machine), few enough BLAS calls to keep BLAS efficient.
_STREAM_BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class AggregationResult:
    """The outcome of one aggregation.

    ``update``: the aggregated update ``[d]``, in the dtype of the input updates.
    ``effective_weights``: ``[n]``, the share each input got in the result; non-negative and
    summing to 1, 0 meaning the input was ignored (flagged). For the per-coordinate rules
    (``median``, ``trimmed-mean``) it is each row's share averaged over the coordinates (the
    weighted fraction of coordinates in which the row survived trimming). Only when a rule
    discards every input (``fltrust`` with no trusted update) is it all zeros, and the update
    is then the zero update.
    ``diagnostics``: rule-specific extras for logs and metrics (trust scores, Krum scores, ...).
    """

    update: FloatArray
    effective_weights: F64Array
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> NDArray[np.bool_]:
        """``[n]`` mask of the inputs that had no influence on the result."""
        return self.effective_weights <= 0.0


@dataclass(frozen=True)
class Rule:
    """A named aggregation rule.

    ``needs_reference``: the caller must pass ``reference=ndarray[d]``.
    ``reference_kind``: what ``reference`` means for this rule: ``"root-update"`` (the update
    the server computed on its own clean root data this round), ``"previous-aggregate"`` (the
    update this rule returned last round; optional) or ``"none"`` (not accepted).
    """

    name: str
    fn: Callable[..., AggregationResult]
    needs_reference: bool
    description: str
    reference_kind: ReferenceKind = "none"

    @property
    def options(self) -> dict[str, Any]:
        """The rule's keyword options and their defaults (``reference`` included)."""
        params = inspect.signature(self.fn).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def __call__(self, updates: ArrayLike, weights: ArrayLike, **kwargs: Any) -> AggregationResult:
        unknown = sorted(set(kwargs) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise ValueError(f"rule {self.name!r} has no option {unknown}; its options: {known}")
        if self.needs_reference and kwargs.get("reference") is None:
            raise ValueError(
                f"rule {self.name!r} needs reference=<the server's update on its root data, [d]>"
            )
        return self.fn(updates, weights, **kwargs)


# ------------------------------------------------------------------------ validation


def _prepare(updates: ArrayLike, weights: ArrayLike) -> tuple[FloatArray, F64Array]:
    """Check the inputs; return C-contiguous float updates and the weights scaled EXACTLY.

    Equal weights become 1; other weights are multiplied by a power of two (exact in
    floating point) so that the largest lies in [0.5, 1): sums cannot overflow, and equal
    or integer weights (stake x examples) still add up exactly, which the weighted median
    relies on to see an exact half. Rules that need shares call ``_normalised``.
    """
    u = np.asarray(updates)
    if u.ndim != 2:
        raise ValueError(
            f"updates must be a 2-D array [n nodes, d parameters], got shape {u.shape}"
        )
    n, d = u.shape
    if n == 0:
        raise ValueError("no updates to aggregate (n = 0)")
    if d == 0:
        raise ValueError("updates have no parameters (d = 0)")
    if u.dtype.kind not in "biuf":
        raise ValueError(f"updates must be real numbers, got dtype {u.dtype}")
    if u.dtype not in (np.float32, np.float64):
        u = u.astype(np.float64)
    u = np.ascontiguousarray(u)
    # One BLAS pass first (NaN and Inf propagate through the column sums); the exact,
    # allocating check only when that is not finite (it may also be a float32 overflow).
    if not np.isfinite(np.ones(n, dtype=u.dtype) @ u).all():
        bad = np.flatnonzero(~np.isfinite(u).all(axis=1))
        if bad.size:
            raise ValueError(f"updates contain NaN or Inf (rows {bad.tolist()})")

    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},) to match {n} updates, got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError(f"weights must be finite, got {w.tolist()}")
    if (w < 0).any():
        raise ValueError(f"weights must be non-negative, got {w.tolist()}")
    w_max = w.max()
    if w_max == 0:
        raise ValueError("all weights are zero: nothing to aggregate")
    if (w[w > 0] == w_max).all():  # equal weights: count heads, exactly
        return u, (w > 0).astype(np.float64)
    return u, np.ldexp(w, -np.frexp(w_max)[1])


def _normalised(w: F64Array) -> F64Array:
    return w / w.sum()


def _prepare_reference(reference: ArrayLike, d: int) -> F64Array:
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != (d,):
        raise ValueError(f"reference must have shape ({d},) like one update, got {ref.shape}")
    if not np.isfinite(ref).all():
        raise ValueError("reference contains NaN or Inf")
    return ref


def _int_option(name: str, value: object, low: int, high: int) -> int:
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return number


def _float_option(name: str, value: object, low: float, high: float, *, open_high: bool) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    inside = low <= number < high if open_high else low <= number <= high
    if not inside:
        bracket = ")" if open_high else "]"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")
    return number


def _weighted_mean(u: FloatArray, share: F64Array) -> FloatArray:
    """``share @ u`` in u's dtype (BLAS gemv; mixing dtypes would copy u to float64)."""
    return share.astype(u.dtype) @ u


def _row_norms(u: FloatArray) -> F64Array:
    """Euclidean norm of each row without an ``[n, d]`` temporary.

    Accumulates in u's dtype: for float32 about 1e-5 relative error, irrelevant for the
    clipping and rescaling factors these norms feed (and 3-5x faster than ``linalg.norm``).
    """
    return np.sqrt(np.einsum("ij,ij->i", u, u).astype(np.float64))


def _stream_blocks(n: int, d: int) -> Iterator[slice]:
    step = max(1, _STREAM_BLOCK_ELEMENTS // n)
    for start in range(0, d, step):
        yield slice(start, min(start + step, d))


def _distances_to(u: FloatArray, centre: F64Array) -> F64Array:
    """``|x_i - centre|`` for every row, block by block (summed in float64)."""
    sq = np.zeros(u.shape[0])
    centre_u = centre.astype(u.dtype)
    for cols in _stream_blocks(*u.shape):
        diff = u[:, cols] - centre_u[cols]
        sq += np.einsum("ij,ij->i", diff, diff)
    return np.sqrt(sq)


# ------------------------------------------------------------ per-coordinate helpers


def _column_blocks(n: int, d: int) -> Iterator[slice]:
    step = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, d, step):
        yield slice(start, min(start + step, d))


def _order_columns(block: FloatArray, w: F64Array) -> tuple[FloatArray, NDArray[np.intp], F64Array]:
    """Columns of ``block [n, c]`` as rows ``[c, n]``, each row's sort order, and the
    weights in that order, cumulated (``[c, n]``, exact for integer or equal weights)."""
    values = np.ascontiguousarray(block.T)
    order = np.argsort(values, axis=1)
    return values, order, np.cumsum(w[order], axis=1)


def _weighted_median_positions(
    cumulated: F64Array,
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Sorted positions of the lower and upper weighted medians in each row.

    Lower: the first position where the cumulated weight reaches half the total; upper: the
    first where it exceeds half. The median is the mean of the two, so equal weights give
    ``np.median`` (the mean of the two middle values for even n) and a row holding more than
    half of the weight is the median whatever the others say.
    """
    half = 0.5 * cumulated[:, -1:]
    return np.argmax(cumulated >= half, axis=1), np.argmax(cumulated > half, axis=1)


def weighted_median_1d(values: ArrayLike, weights: ArrayLike) -> float:
    """Weighted median of a vector (the same definition as the ``median`` rule)."""
    u, w = _prepare(np.asarray(values, dtype=np.float64)[:, None], weights)
    column, order, cumulated = _order_columns(u, w)
    lower, upper = _weighted_median_positions(cumulated)
    return float(0.5 * (column[0, order[0, lower[0]]] + column[0, order[0, upper[0]]]))


# ---------------------------------------------------------------------------- rules


def fedavg(updates: ArrayLike, weights: ArrayLike) -> AggregationResult:
    """Stake-weighted mean: ``sum_i w_i x_i / sum_i w_i``. One outlier can move it anywhere."""
    u, w = _prepare(updates, weights)
    share = _normalised(w)
    return AggregationResult(_weighted_mean(u, share), share)


def median(updates: ArrayLike, weights: ArrayLike) -> AggregationResult:
    """Weighted coordinate-wise median.

    In each coordinate: sort the values, cumulate their weights, take the value where the
    cumulated weight reaches half (the mean of the lower and upper weighted medians when a
    cut falls exactly on half). Equal weights give ``np.median``. Breaks down once the
    attackers hold half of the weight in a coordinate.
    """
    u, w = _prepare(updates, weights)
    n, d = u.shape
    result = np.empty(d, dtype=u.dtype)
    share = np.zeros(n, dtype=np.float64)
    for cols in _column_blocks(n, d):
        values, order, cumulated = _order_columns(u[:, cols], w)
        lower, upper = _weighted_median_positions(cumulated)
        rows = np.arange(values.shape[0])
        lower_row, upper_row = order[rows, lower], order[rows, upper]
        result[cols] = 0.5 * (values[rows, lower_row].astype(np.float64) + values[rows, upper_row])
        share += 0.5 * np.bincount(lower_row, minlength=n)
        share += 0.5 * np.bincount(upper_row, minlength=n)
    return AggregationResult(result, share / d)


def trimmed_mean(updates: ArrayLike, weights: ArrayLike, *, beta: float = 0.2) -> AggregationResult:
    """Weighted coordinate-wise trimmed mean.

    In each coordinate: sort the values and cut ``beta`` of the total WEIGHT from each end,
    a row straddling a cut keeping the part of its weight inside; the result is the
    weighted mean of what is kept. ``beta = 0`` is ``fedavg``; it tolerates attackers
    holding less than ``beta`` of the weight.
    """
    u, w = _prepare(updates, weights)
    beta = _float_option("beta", beta, 0.0, 0.5, open_high=True)
    n, d = u.shape
    result = np.empty(d, dtype=u.dtype)
    share = np.zeros(n, dtype=np.float64)
    for cols in _column_blocks(n, d):
        values, order, upto = _order_columns(u[:, cols], w)
        before = np.zeros_like(upto)
        before[:, 1:] = upto[:, :-1]
        total = upto[:, -1:]
        kept = np.minimum(upto, (1.0 - beta) * total) - np.maximum(before, beta * total)
        np.maximum(kept, 0.0, out=kept)
        kept /= kept.sum(axis=1, keepdims=True)
        # the sorted values are the same whatever order ties were put in: np.sort is faster
        result[cols] = np.einsum("ij,ij->i", kept, np.sort(values, axis=1))
        share += np.bincount(order.ravel(), weights=kept.ravel(), minlength=n)
    return AggregationResult(result, share / d, {"beta": beta})


def _pairwise_sq_distances(u: FloatArray) -> F64Array:
    """Squared Euclidean distances between rows from their Gram matrix.

    The rows are centred first: distances do not change, and ``|x|^2 + |y|^2 - 2 x.y`` no
    longer cancels catastrophically when all updates share a large common component. The
    Gram matrix is one BLAS call per block of columns (in u's dtype), summed in float64.
    """
    n, d = u.shape
    mean = _weighted_mean(u, np.full(n, 1.0 / n))
    gram = np.zeros((n, n))
    for cols in _stream_blocks(n, d):
        centred = u[:, cols] - mean[cols]
        gram += centred @ centred.T
    sq_norms = np.diag(gram)
    dist = sq_norms[:, None] + sq_norms[None, :] - 2.0 * gram
    np.maximum(dist, 0.0, out=dist)
    np.fill_diagonal(dist, 0.0)
    return dist


def multi_krum(
    updates: ArrayLike,
    weights: ArrayLike,
    *,
    f: int | None = None,
    m: int | None = None,
) -> AggregationResult:
    """Multi-Krum: score each update by its distance to its closest peers, average the best.

    Score of update i = sum of its ``n - f - 2`` smallest squared distances to the other
    updates; the ``m`` lowest-scoring updates (default ``m = n - f``) are averaged with their
    weights. ``f`` (assumed number of Byzantine updates) defaults to the most Krum tolerates,
    ``floor((n - 3) / 2)``. Updates with weight 0 take no part. The scores count heads, not
    stake: a group of colluding near-identical updates holding half the nodes wins.
    """
    u_all, w_raw = _prepare(updates, weights)
    w_all = _normalised(w_raw)
    active = np.flatnonzero(w_all > 0)
    # no copy of the [n, d] updates when every weight is positive (the usual case)
    u = u_all if active.size == len(w_all) else u_all[active]
    w = w_all[active]
    n = u.shape[0]
    f_max = max(0, (n - 3) // 2)
    if f is None:
        f = f_max
    elif _int_option("f", f, 0, n) > f_max:
        raise ValueError(
            f"multi-krum needs n > 2f + 2: with {n} positive-weight updates f is at most "
            f"{f_max}, got f={f}"
        )
    m = n - f if m is None else _int_option("m", m, 1, n)

    neighbours = n - f - 2
    if neighbours > 0:
        dist = _pairwise_sq_distances(u)
        np.fill_diagonal(dist, np.inf)
        scores = np.sort(dist, axis=1)[:, :neighbours].sum(axis=1)
    else:  # n <= 2: nothing to compare with
        scores = np.zeros(n)
    selected = np.argsort(scores, kind="stable")[:m]
    share = np.zeros(n)
    share[selected] = w[selected] / w[selected].sum()
    effective = np.zeros_like(w_all)
    effective[active] = share
    all_scores = np.full(w_all.shape, np.nan)
    all_scores[active] = scores
    return AggregationResult(
        _weighted_mean(u, share),
        effective,
        {"f": f, "m": m, "scores": all_scores, "selected": np.sort(active[selected])},
    )


def centered_clipping(
    updates: ArrayLike,
    weights: ArrayLike,
    *,
    reference: ArrayLike | None = None,
    iterations: int = 3,
    tau: float | None = None,
) -> AggregationResult:
    """Centered clipping (Karimireddy, He & Jaggi, ICML 2021).

    Start from ``v = reference`` (the previous round's aggregate; zeros if None) and repeat
    ``iterations`` times: ``v <- v + sum_i w_i clip_tau(x_i - v)`` with the weights
    normalised and ``clip_tau(z) = z * min(1, tau / |z|)``. ``tau`` defaults, in each
    iteration, to the weighted median of the distances ``|x_i - v|``. Every step moves ``v``
    by at most ``tau``, so an outlier's pull is bounded by its weight times ``tau``.
    ``effective_weights`` are the clipped weights ``w_i min(1, tau/|x_i - v|)`` of the last
    iteration, normalised.
    """
    u, w_raw = _prepare(updates, weights)
    w = _normalised(w_raw)
    n, d = u.shape
    iterations = _int_option("iterations", iterations, 1, 1000)
    if tau is not None:
        tau = _float_option("tau", tau, 0.0, np.inf, open_high=True)
        if tau == 0.0:
            raise ValueError("tau must be > 0 (tau = 0 never moves from the reference)")
    v = np.zeros(d) if reference is None else _prepare_reference(reference, d)

    coef = w
    taus: list[float] = []
    for _ in range(iterations):
        dist = _distances_to(u, v)
        radius = weighted_median_1d(dist, w) if tau is None else tau
        scale = np.ones(n)
        far = dist > radius
        scale[far] = radius / dist[far]
        coef = w * scale
        # v + sum_i c_i (x_i - v), without materialising the differences
        v = v + (_weighted_mean(u, coef) - coef.sum() * v)
        taus.append(radius)
    total = coef.sum()
    effective = coef / total if total > 0 else w
    return AggregationResult(v.astype(u.dtype), effective, {"tau": taus})


def fltrust(
    updates: ArrayLike,
    weights: ArrayLike,
    *,
    reference: ArrayLike | None = None,
    min_trust: float = 0.0,
    magnitude: str = "trusted-median",
) -> AggregationResult:
    """FLTrust (Cao, Fang, Liu & Gong, NDSS 2021), with stake: our rule for 50% attackers.

    The server keeps a small clean *root dataset* and each round computes its own update
    ``g0`` on it (the caller does that and passes it as ``reference``). Then

    * trust ``TS_i = ReLU(cos(x_i, g0))``; an update with ``TS_i < min_trust`` and a zero
      update (a free-rider) get trust 0;
    * every update's magnitude is bounded, so boosting it buys no influence. With
      ``magnitude="reference"`` (the paper) each update is rescaled to ``|g0|``. With
      ``magnitude="trusted-median"`` (our default) each update is *clipped* to ``M``, the
      ``w·TS``-weighted median norm of the trusted updates: never inflated, and a boosted
      update is cut to the norm honest updates have. We changed this because under DP an
      honest update is mostly clipping noise plus a small signal, and the server's
      noise-free root update is much shorter than it (measured: |g0| ≈ 2–3 against ≈ 6.5
      for honest DP updates); rescaling to ``|g0|`` shrinks every step and slows
      convergence, while averaging the trusted updates at their own size lets their noise
      cancel as in FedAvg. Sign-flipped updates have trust 0, so they can't move ``M``;
    * ``aggregate = sum_i (w_i TS_i) s_i x_i / sum_i w_i TS_i`` with ``s_i`` the scale above:
      stake multiplies trust, it never replaces it.

    If no update is trusted (or ``g0`` is zero), the result is the zero update (the global
    model does not move) and every effective weight is 0, as in the paper. We do not fall
    back to ``g0``: the root dataset is small and unrepresentative by design, so applying
    the server's own update alone would overfit it; the caller sees the all-zero effective
    weights and can count the round as having accepted nobody.

    Why it survives half of the nodes AND half of the stake sign-flipping: a sign-flipped
    update ``-c x`` points against honest training, so ``cos(-c x, g0) < 0`` and its trust is
    exactly 0, however many such updates there are and whatever stake stands behind them.
    Trust comes from agreement with data the server holds, not from being in the majority.
    The head-count rules (median, trimmed mean, Krum, Bulyan) decide by majority of heads or
    of weight, so by construction they follow the attackers once those hold half: at 50% the
    coordinate-wise median sits halfway between the two camps and the mean follows the
    larger ``c``. FLTrust's assumption is different: the root data must be representative
    enough that ``g0`` points in the direction of honest training.

    ``min_trust`` (default 0, the paper's ReLU) also cuts updates that agree with ``g0``
    only marginally, e.g. an attacker that adds a small ``g0`` component to an unrelated
    direction to pass the ReLU. Keep it below the cosine honest DP-noised updates reach.
    """
    u, w = _prepare(updates, weights)
    n, d = u.shape
    if reference is None:
        raise ValueError("fltrust needs reference=<the server's update on its root data, [d]>")
    g0 = _prepare_reference(reference, d)
    min_trust = _float_option("min_trust", min_trust, 0.0, 1.0, open_high=False)

    g0_norm = float(np.linalg.norm(g0))
    norms = _row_norms(u)
    trust = np.zeros(n)
    usable = norms > 0
    if g0_norm > 0:
        cosine = (u @ g0.astype(u.dtype)).astype(np.float64)
        trust[usable] = np.maximum(cosine[usable] / (norms[usable] * g0_norm), 0.0)
        trust[trust < min_trust] = 0.0
    combined = w * trust
    total = combined.sum()
    if total <= 0:
        return AggregationResult(
            np.zeros(d, dtype=u.dtype), np.zeros(n), {"trust": trust, "reference_norm": g0_norm}
        )
    effective = combined / total
    if magnitude == "reference":
        target = g0_norm
        scale = g0_norm / np.where(usable, norms, 1.0)
    elif magnitude == "trusted-median":
        trusted = combined > 0
        target = weighted_median_1d(norms[trusted], combined[trusted])
        scale = np.minimum(1.0, target / np.where(usable, norms, 1.0))
    else:
        raise ValueError(f"magnitude must be 'trusted-median' or 'reference', got {magnitude!r}")
    coef = np.where(usable, effective * scale, 0.0)
    return AggregationResult(
        _weighted_mean(u, coef),
        effective,
        {"trust": trust, "reference_norm": g0_norm, "magnitude": target},
    )


# ------------------------------------------------------------------------- registry

RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("fedavg", fedavg, False, "Stake-weighted mean (not robust)."),
        Rule(
            "median",
            median,
            False,
            "Weighted coordinate-wise median; robust while attackers hold < 50% of the weight.",
        ),
        Rule(
            "trimmed-mean",
            trimmed_mean,
            False,
            "Weighted coordinate-wise trimmed mean cutting `beta` (0.2) of the weight per side.",
        ),
        Rule(
            "multi-krum",
            multi_krum,
            False,
            "Average of the m updates closest to their n-f-2 nearest peers (head count).",
        ),
        Rule(
            "centered-clipping",
            centered_clipping,
            False,
            "Iteratively clip updates around the previous round's aggregate.",
            reference_kind="previous-aggregate",
        ),
        Rule(
            "fltrust",
            fltrust,
            True,
            "Trust = ReLU(cosine with the server's root-data update) x stake; norms rescaled. "
            "Survives 50% of nodes and stake attacking.",
            reference_kind="root-update",
        ),
    )
}


def get_rule(name: str) -> Rule:
    """The rule called ``name``; a ``ValueError`` naming the valid rules otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(
            f"unknown aggregation rule {name!r}; choose one of: {', '.join(RULES)}"
        ) from None
