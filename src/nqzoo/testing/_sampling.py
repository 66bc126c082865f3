r"""Statistical checks of samplers: Pearson's chi-squared test against exact $|\psi|^p$."""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, PRNGKeyArray

from .._misc import positive_int, RealNumber
from ..hilbert import AbstractDiscreteHilbert
from ..sampling import sample
from ._common import (
    discrete_hilbert_of,
    hilbert_of,
    log_psi,
    machine_pow_of,
    name_of,
    row_index,
    shown,
    tolerance,
)


#: The default significance level of the sampling checks: a correct sampler fails a check
#: with this probability over the random seeds (for a fixed seed the check is deterministic).
ALPHA = 1e-4


class Chi2Result(NamedTuple):
    """The outcome of Pearson's chi-squared test (see [`nqzoo.testing.chi2_test`][])."""

    statistic: float
    """$\\chi^2 = \\sum_b (O_b - E_b)^2 / E_b$ over the bins $b$."""
    dof: int
    """Degrees of freedom: the number of bins (after merging) minus one."""
    pvalue: float
    r"""$P(\chi^2_{\mathrm{dof}} \geq$ `statistic`$)$; 0 if a sample fell where the target
    probability vanishes."""
    n_samples: int
    """The number of samples."""


def _check_alpha(alpha: Any) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be a probability in (0, 1), got alpha={alpha!r}.")
    return float(alpha)


def chi2_test(
    counts: ArrayLike | Sequence, probs: ArrayLike | Sequence, *, min_expected: RealNumber = 5
) -> Chi2Result:
    r"""Pearson's chi-squared goodness-of-fit test of a histogram against probabilities.

    The expected counts are $E_b = n\,p_b / \sum_{b'} p_{b'}$ (so `probs` may be
    unnormalised, e.g. $|\psi|^p$ of a model that is not normalised), with $n$ the total
    count. Bins expecting fewer than `min_expected` counts are merged into one (Pearson's
    approximation needs $E_b \gtrsim 5$). The p-value is the upper tail of the $\chi^2$
    distribution with `dof` degrees of freedom, $Q(\mathrm{dof}/2, \chi^2/2)$, the regularised
    upper incomplete gamma function (`jax.scipy.special.gammaincc`). Counts in a bin whose
    probability is 0 give $\chi^2 = \infty$ and a p-value of 0.

    The samples behind `counts` must be independent (exact samples, or one sample per
    Markov chain after a long enough burn-in).

    **Arguments:**

    - `counts`: the observed counts per bin `(n_bins,)`.
    - `probs`: the probability (or a non-negative weight) of each bin `(n_bins,)`.
    - `min_expected`: merge the bins expecting fewer counts than this.

    **Returns:** a [`Chi2Result`][nqzoo.testing.Chi2Result] `(statistic, dof, pvalue,
    n_samples)`.
    """
    counts = np.asarray(counts, dtype=np.float64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if counts.shape != probs.shape:
        raise ValueError(
            f"counts and probs must have the same shape, got {counts.shape} and {probs.shape}."
        )
    if np.any(~np.isfinite(probs)) or np.any(probs < 0) or not probs.sum() > 0:
        raise ValueError("probs must be finite, non-negative and not all zero.")
    n = counts.sum()
    expected = n * probs / probs.sum()
    if np.any(counts[expected == 0] > 0):
        return Chi2Result(float("inf"), int(np.sum(expected > 0)) - 1, 0.0, int(n))
    small = expected < min_expected
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    statistic = float(np.sum((obs - exp) ** 2 / exp))
    dof = obs.size - 1
    if dof == 0:
        return Chi2Result(statistic, 0, 1.0, int(n))
    pvalue = float(jax.scipy.special.gammaincc(dof / 2, statistic / 2))
    return Chi2Result(statistic, dof, pvalue, int(n))


def histogram(states: ArrayLike | AbstractDiscreteHilbert, samples: ArrayLike) -> np.ndarray:
    """Counts of every configuration of `states` in `samples`.

    **Arguments:**

    - `states`: the configurations `(n_states, N)`, or a discrete Hilbert space (its
      `all_states()`, inside the constraint of a constrained space).
    - `samples`: the samples `(n_samples, N)`.

    **Returns:** the counts `(n_states,)`, in the order of `states`.

    **Raises:** `AssertionError` naming the first sample that is not one of `states`.
    """
    if isinstance(states, AbstractDiscreteHilbert):
        where, states = f"a configuration of {states!r}", states.all_states()
    else:
        where = "one of the given states"
    states, samples = np.asarray(states), np.asarray(samples)
    if samples.ndim != 2 or samples.shape[-1] != states.shape[-1]:
        raise ValueError(
            f"samples must have shape (n_samples, N={states.shape[-1]}), got {samples.shape}."
        )
    rows = row_index(states, samples)
    if np.any(rows < 0):
        bad = int(np.flatnonzero(rows < 0)[0])
        raise AssertionError(
            f"sample #{bad} x={shown(samples[bad])} is not {where} "
            f"({int(np.sum(rows < 0))} of the {len(samples)} samples are not)."
        )
    return np.bincount(rows, minlength=len(states))


def _target_probs(target: Any, hilbert: Any, machine_pow: Any) -> tuple:
    """The space and the probabilities (normalised) of every state under `target`."""
    hilbert = discrete_hilbert_of(target, hilbert)
    states = hilbert.all_states()
    if callable(target):
        p = machine_pow_of(target, machine_pow)
        log_p = p * log_psi(target, states).real.astype(np.float64)
        if np.any(np.isnan(log_p)):
            raise AssertionError(f"{name_of(target)}: log psi is NaN on some states.")
        probs = np.exp(log_p - log_p.max())
    else:
        probs = np.asarray(target, dtype=np.float64)
        if probs.shape != (len(states),):
            raise ValueError(
                f"target probabilities must have one entry per state of {hilbert!r}, shape "
                f"({len(states)},), got shape {probs.shape}."
            )
    return hilbert, states, probs / probs.sum()


def sampler_chi2(
    target: Callable | ArrayLike,
    samples: ArrayLike,
    hilbert: AbstractDiscreteHilbert | None = None,
    *,
    machine_pow: RealNumber | None = None,
    min_expected: RealNumber = 5,
) -> Chi2Result:
    r"""Pearson's chi-squared test of samples against $|\psi(x)|^p$ over a small space.

    **Arguments:**

    - `target`: the distribution: a model or any callable returning $\log\psi$ (its
      $|\psi|^p$ is normalised over the space here; to test against a function returning
      $\log P$, pass it with `machine_pow=1`), or the probabilities of every state of
      `hilbert.all_states()`.
    - `samples`: independent samples `(n_samples, N)`.
    - `hilbert`: the space; `target.hilbert` by default.
    - `machine_pow`: the power $p$; `target.machine_pow` by default (2 without one).
    - `min_expected`: as in [`chi2_test`][nqzoo.testing.chi2_test].

    **Returns:** a [`Chi2Result`][nqzoo.testing.Chi2Result].

    **Raises:** `AssertionError` if a sample is not a state of the space.
    """
    hilbert, states, probs = _target_probs(target, hilbert, machine_pow)
    return chi2_test(histogram(hilbert, samples), probs, min_expected=min_expected)


def assert_samples_match(
    target: Callable | ArrayLike,
    samples: ArrayLike,
    hilbert: AbstractDiscreteHilbert | None = None,
    *,
    log_prob: ArrayLike | None = None,
    machine_pow: RealNumber | None = None,
    alpha: RealNumber = ALPHA,
    min_expected: RealNumber = 5,
    rtol: RealNumber | None = None,
) -> Chi2Result:
    r"""Check that independent samples follow $|\psi(x)|^p$: every sample is a state of the
    space and Pearson's chi-squared test does not reject at level `alpha`.

    With a fixed seed the check is deterministic; over seeds a correct sampler fails it with
    probability `alpha` (the default `1e-4` is [`ALPHA`][nqzoo.testing.ALPHA]), so a test
    suite of a few dozen such checks fails by chance about once in a few hundred seeds.
    Its power grows with the number of samples: in nqzoo's tests, 20 000 samples of a
    5-spin model drawn from $|\psi|^1$ instead of $|\psi|^2$ give a p-value below
    $10^{-50}$.

    **Arguments:**

    - `target`, `samples`, `hilbert`, `machine_pow`, `min_expected`: as in
      [`sampler_chi2`][nqzoo.testing.sampler_chi2].
    - `log_prob`: optionally the log-probabilities the sampler returned with the samples
      (`nqz.sample(..., return_log_prob=True)`); they must equal
      $p\,\mathrm{Re}\log\psi$ of the samples (for a callable `target`, which must then be
      normalised).
    - `alpha`: the significance level.
    - `rtol`: the tolerance on `log_prob`, relative (absolute below 1); default `1e-12`
      (`1e-5` in single precision).

    **Returns:** the [`Chi2Result`][nqzoo.testing.Chi2Result].

    **Raises:** `AssertionError` with $\chi^2$, the degrees of freedom, the p-value and the
    states whose counts deviate most from their expected counts (in standard deviations), or
    naming the first sample outside the space or whose `log_prob` is wrong.
    """
    alpha = _check_alpha(alpha)
    hilbert, states, probs = _target_probs(target, hilbert, machine_pow)
    samples = np.asarray(samples)
    counts = histogram(hilbert, samples)
    if log_prob is not None:
        if not callable(target):
            raise TypeError("log_prob can only be checked against a callable target.")
        p = machine_pow_of(target, machine_pow)
        log_prob = np.asarray(log_prob)
        expected = p * log_psi(target, jnp.asarray(samples)).real
        tol = tolerance(rtol, log_prob.dtype, 1e-12, 1e-5)
        error = np.abs(log_prob - expected) / np.maximum(np.abs(expected), 1)
        if log_prob.shape != expected.shape or np.any(~(error <= tol)):
            if log_prob.shape != expected.shape:
                raise AssertionError(
                    f"log_prob has shape {log_prob.shape}, not {expected.shape} (one per sample)."
                )
            bad = int(np.argmax(np.where(np.isnan(error), np.inf, error)))
            raise AssertionError(
                f"the sampler's log_prob of sample #{bad} x={shown(samples[bad])} is "
                f"{float(log_prob[bad])!r}, but {p} Re log psi(x) = {float(expected[bad])!r} "
                f"(relative error {float(error[bad]):.3g} > rtol={tol:.3g})."
            )
    result = chi2_test(counts, probs, min_expected=min_expected)
    if not result.pvalue >= alpha:
        expected = result.n_samples * probs
        sigma = (counts - expected) / np.sqrt(np.maximum(expected, 1e-300))
        worst = np.argsort(-np.abs(sigma))[:3]
        lines = "; ".join(
            f"x={shown(states[i])}: {int(counts[i])} observed, {expected[i]:.1f} expected "
            f"({sigma[i]:+.1f} sigma)"
            for i in worst
        )
        raise AssertionError(
            f"the samples do not follow |psi|^p of {name_of(target)}: chi2 = "
            f"{result.statistic:.6g} with {result.dof} degrees of freedom, p-value "
            f"{result.pvalue:.3g} < alpha={alpha:.3g} ({result.n_samples} samples over the "
            f"{len(states)} states of {hilbert!r}). Largest deviations: {lines}."
        )
    return result


@eqx.filter_jit
def _sample(model, n_samples, key, state, chunk_size):
    return sample(
        model, n_samples, key=key, state=state, chunk_size=chunk_size, return_log_prob=True
    )


def assert_exact_sampling(
    model: Any,
    *,
    key: PRNGKeyArray,
    state: eqx.nn.State | None = None,
    n_samples: int = 20_000,
    chunk_size: int | None = None,
    alpha: RealNumber = ALPHA,
    rtol: RealNumber | None = None,
) -> tuple[jax.Array, Chi2Result]:
    r"""Draw samples with [`nqzoo.sample`][] and check them: shape and dtype, the returned
    log-probabilities, and their distribution (chi-squared against the exact $|\psi|^p$ of
    every state, [`assert_samples_match`][nqzoo.testing.assert_samples_match]).

    **Arguments:**

    - `model`: an autoregressive model on a small space.
    - `key`: the PRNG key of the sampler (fixed: the check is deterministic; over keys a
      correct sampler fails with probability `alpha`).
    - `state`: the model's cache state (fast models).
    - `n_samples`: the number of samples.
    - `chunk_size`: passed to `nqz.sample`.
    - `alpha`, `rtol`: as in [`assert_samples_match`][nqzoo.testing.assert_samples_match].

    **Returns:** `(samples, result)`: the samples `(n_samples, N)` and the
    [`Chi2Result`][nqzoo.testing.Chi2Result].

    **Raises:** `AssertionError` as [`assert_samples_match`][nqzoo.testing.assert_samples_match],
    or naming a wrong shape or dtype of the samples.
    """
    hilbert = discrete_hilbert_of(model, None, "model.hilbert")
    n_samples = positive_int(n_samples, "n_samples")
    samples, log_prob = _sample(model, n_samples, key, state, chunk_size)
    if samples.shape != (n_samples, hilbert.size) or samples.dtype != hilbert.dtype:
        raise AssertionError(
            f"nqz.sample({name_of(model)}, {n_samples}) returned {samples.dtype} samples of "
            f"shape {samples.shape}, not {hilbert.dtype} of shape ({n_samples}, {hilbert.size})."
        )
    result = assert_samples_match(model, samples, log_prob=log_prob, alpha=alpha, rtol=rtol)
    return samples, result


def assert_mcmc_samples_match(
    sampler: Any,
    model: Callable,
    *,
    key: PRNGKeyArray,
    n_discard: int = 20,
    alpha: RealNumber = ALPHA,
    rtol: RealNumber | None = None,
) -> tuple[jax.Array, Chi2Result]:
    r"""Check a Markov-chain sampler ([`nqzoo.mcmc.MetropolisSampler`][]) against the exact
    $|\psi|^p$ of a small space.

    Every chain starts from `sampler.init` (uniformly random), runs `n_discard` sweeps and
    keeps its configuration after one more: `sampler.n_chains` samples, independent (one per
    chain), so Pearson's test applies as it is. The chains must have mixed in `n_discard`
    sweeps, or a correct sampler fails the check: take a model that is not too peaked, or
    more sweeps. The carried log-probabilities (`info.log_prob`) must be
    $p\,\mathrm{Re}\log\psi$ of the samples, $p$ = `sampler.machine_pow`.

    **Arguments:**

    - `sampler`: the sampler (`init(model, key)`, `sample(model, state, n, n_discard=...)`,
      `n_chains`, `hilbert`, `machine_pow`).
    - `model`: $\log\psi$, normalised or not.
    - `key`: the PRNG key of the chains.
    - `n_discard`: the burn-in, in sweeps.
    - `alpha`, `rtol`: as in [`assert_samples_match`][nqzoo.testing.assert_samples_match].

    **Returns:** `(samples, result)`: the `(n_chains, N)` samples and the
    [`Chi2Result`][nqzoo.testing.Chi2Result].
    """
    state = sampler.init(model, key)
    samples, _, info = sampler.sample(model, state, sampler.n_chains, n_discard=n_discard)
    p = sampler.machine_pow
    hilbert = hilbert_of(sampler, None, "sampler.hilbert")
    log_p = np.asarray(info.log_prob)
    expected = p * log_psi(model, samples).real
    tol = tolerance(rtol, log_p.dtype, 1e-12, 1e-5)
    error = np.abs(log_p - expected) / np.maximum(np.abs(expected), 1)
    if np.any(~(error <= tol)):
        bad = int(np.argmax(np.where(np.isnan(error), np.inf, error)))
        raise AssertionError(
            f"the chains' log_prob of sample #{bad} x={shown(samples[bad])} is "
            f"{float(log_p[bad])!r}, but {p} Re log psi(x) = {float(expected[bad])!r} "
            f"(relative error {float(error[bad]):.3g} > rtol={tol:.3g})."
        )
    result = assert_samples_match(model, samples, hilbert, machine_pow=p, alpha=alpha)
    return samples, result
