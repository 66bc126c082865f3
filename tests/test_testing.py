"""nqzoo.testing: every check passes on correct models and fails, with a message saying what,
where and by how much, on a deliberately broken one (a leaking mask, a wrong normalisation,
a drifting fast twin, a biased sampler, a non-symmetric model, a missing shape check, a
converted model that differs from NetKet's)."""

import os
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.models import normalize_log_conditionals

from .helpers import FastLogistic, Logistic


# --------------------------------------------------------------------------------------------
# Broken variants of the small autoregressive model `Logistic` (tests/helpers.py) and its fast
# twin `FastLogistic` (whose `drift` and `normalise` break it)


class Unnormalised(Logistic):
    """A wrong normalisation: the conditionals of site 2 are 10% too large."""

    def conditionals_log_psi(self, x):
        bump = jnp.zeros(self.hilbert.size, self.bias.dtype).at[2].set(0.05)
        out = super().conditionals_log_psi(x)
        return out + jnp.broadcast_to(bump[:, None], out.shape)


class Squared(Logistic):
    """Site i also reads x_{i+1}**2: invisible to spin flips (x^2 = 1), not to the Jacobian."""

    def conditionals_log_psi(self, x):
        x = jnp.asarray(x).astype(self.bias.dtype)
        later = jnp.concatenate([x[..., 1:], jnp.zeros_like(x[..., :1])], axis=-1) ** 2
        z = self.raw(x) + 0.3 * jnp.einsum("...i,ik->...ik", later, self.bias)
        return normalize_log_conditionals(z, self.machine_pow)


class Reversed(Logistic):
    """A causal mask in site order, but a model that declares the reversed order."""

    def reorder(self, x, axis=-1):
        return jnp.flip(jnp.asarray(x), axis)

    def inverse_reorder(self, x, axis=-1):
        return jnp.flip(jnp.asarray(x), axis)


SPIN5 = nqz.hilbert.Spin(0.5, 5)
SPIN6_SZ0 = nqz.hilbert.Spin(0.5, 6, total_sz=0)
FOCK4 = nqz.hilbert.Fock(2, 4)


def _fast(slow, **kwargs):
    return eqx.nn.make_with_state(FastLogistic)(slow, **kwargs)


# --------------------------------------------------------------------------------------------
# Normalisation


@pytest.mark.parametrize(
    "hilbert, dtype, mp",
    [(SPIN5, jnp.float64, 2), (SPIN6_SZ0, jnp.complex128, 1), (FOCK4, jnp.float32, 2)],
)
def test_normalized(hilbert, dtype, mp, getkey):
    slow = Logistic(hilbert, mp, dtype, key=getkey())
    fast, state = _fast(slow)
    nqt.assert_normalized(slow)
    nqt.assert_normalized(fast, state=state)
    nqt.assert_normalized(slow, hilbert, machine_pow=mp, rtol=1e-4)
    unnormalised = Unnormalised(hilbert, mp, dtype, key=getkey())
    if hilbert.constrained:  # the constraint's mask renormalises every conditional
        nqt.assert_normalized(unnormalised)
    else:  # a wrong normalisation: the sum, by how much, and the site
        with pytest.raises(AssertionError, match=r"not normalised(.|\n)*site 2 sum to"):
            nqt.assert_normalized(unnormalised)
    # the wrong power
    with pytest.raises(AssertionError, match=rf"\|psi\(x\)\|\^{3 - mp} .* is "):
        nqt.assert_normalized(slow, machine_pow=3 - mp)


def test_normalized_library_models_and_rbm(getkey):
    model = nqz.models.ARNNConv1D(SPIN5, 2, 3, 2, param_dtype=jnp.complex128, key=getkey())
    nqt.assert_normalized(model)
    rbm = nqz.models.RBM(SPIN5, key=getkey())  # not normalised: machine_pow 2 by default
    with pytest.raises(AssertionError, match=r"RBM is not normalised: sum_x \|psi\(x\)\|\^2"):
        nqt.assert_normalized(rbm)


class Leaky(Logistic):
    """Normalised inside the constrained space, but with weight outside it."""

    def __call__(self, x):
        inside = jnp.sum(jnp.asarray(x), axis=-1) == 0
        return jnp.where(inside, super().__call__(x), -3.0)


def test_normalized_fails_outside_the_constraint_and_on_the_fast_path(getkey):
    with pytest.raises(AssertionError, match=r"weight outside the constrained space"):
        nqt.assert_normalized(Leaky(SPIN6_SZ0, key=getkey()))
    slow = Logistic(SPIN5, key=getkey())
    fast, state = _fast(slow, normalise=False)
    nqt.assert_normalized(fast)  # model(x) is fine ...
    with pytest.raises(AssertionError, match="conditional steps .* are not normalised"):
        nqt.assert_normalized(fast, state=state)  # ... the steps are another distribution


# --------------------------------------------------------------------------------------------
# The autoregressive property


def test_autoregressive(getkey):
    nqt.assert_autoregressive(Logistic(FOCK4, key=getkey()), key=getkey(), jacobian=True)
    nqt.assert_autoregressive(Logistic(SPIN6_SZ0, key=getkey()), key=getkey())
    conv = nqz.models.ARNNConv1D(SPIN5, 2, 3, 3, param_dtype=jnp.float32, key=getkey())
    nqt.assert_autoregressive(conv, key=getkey())


@pytest.mark.parametrize(
    "broken, match",
    [
        # a leaking mask: W includes the diagonal, so site i reads x_i itself
        (lambda key: Logistic(SPIN5, key=key, diagonal=0), r"site \d \(position \d in the "
         r"model's order\) depend on itself(.|\n)*Setting x\[\d\] from"),
        # a leaking mask in the reversed order the model declares
        (lambda key: Reversed(FOCK4, key=key), r"depend on site \d \(position \d\)"),
    ],
    ids=["diagonal", "reversed-order"],
)
def test_autoregressive_fails_on_a_leaking_mask(broken, match, getkey):
    with pytest.raises(AssertionError, match=match):
        nqt.assert_autoregressive(broken(getkey()), key=getkey())


def test_autoregressive_jacobian_sees_what_flips_do_not(getkey):
    model = Squared(SPIN5, key=getkey())
    nqt.assert_autoregressive(model, key=getkey())  # x_{i+1}^2 = 1 for every spin
    with pytest.raises(AssertionError, match=r"site \d .* derivative .* x\[\d\]"):
        nqt.assert_autoregressive(model, key=getkey(), jacobian=True)


# --------------------------------------------------------------------------------------------
# Fast equals slow


@pytest.mark.parametrize(
    "hilbert, dtype", [(SPIN5, jnp.complex128), (SPIN6_SZ0, jnp.float64), (FOCK4, jnp.float32)]
)
def test_fast_matches_slow(hilbert, dtype, getkey):
    slow = Logistic(hilbert, 2, dtype, key=getkey())
    fast, state = _fast(slow)
    states = hilbert.all_states()  # as many random configurations: one compilation
    nqt.assert_fast_matches_slow(fast, state, key=getkey(), n_configs=len(states))
    nqt.assert_fast_matches_slow(fast, state, states, slow=slow, atol=1e-5)
    # a fast twin that drifts: the first step that differs is named
    drifting, state = _fast(slow, drift=1e-3)
    with pytest.raises(AssertionError, match=r"probabilities of site 1 \(step 1 of the model"):
        nqt.assert_fast_matches_slow(drifting, state, states)


def test_fast_matches_slow_sees_phases_and_library_twins(getkey):
    slow = Logistic(SPIN5, 2, jnp.complex128, key=getkey())
    wrong_phase, state = _fast(slow, drift=0.1, phase=True)
    nqt.assert_fast_matches_slow(wrong_phase, state, key=getkey(), amplitudes=False)
    with pytest.raises(AssertionError, match=r"amplitudes of site 1 .* \|diff\| = "):
        nqt.assert_fast_matches_slow(wrong_phase, state, key=getkey())
    fast, state = eqx.nn.make_with_state(nqz.models.FastARNNDense)(
        SPIN5, 2, 3, param_dtype=jnp.complex128, key=getkey()
    )
    nqt.assert_fast_matches_slow(fast, state, key=getkey(), slow=fast.to_slow(), atol=1e-13)
    with pytest.raises(ValueError, match="slow.hilbert"):
        nqt.assert_fast_matches_slow(fast, state, key=getkey(), slow=Logistic(FOCK4, key=getkey()))


# --------------------------------------------------------------------------------------------
# Sampling: chi-squared


def test_chi2_test_values_and_false_alarm_rate():
    scipy_stats = pytest.importorskip("scipy.stats")
    probs = np.array([0.5, 0.3, 0.15, 0.04, 0.01])
    counts = np.array([480, 320, 140, 45, 15])
    result = nqt.chi2_test(counts, probs)
    stat, p = scipy_stats.chisquare(counts, 1000 * probs)
    assert result.dof == 4 and result.n_samples == 1000
    np.testing.assert_allclose([result.statistic, result.pvalue], [stat, p], rtol=1e-10)
    # a sample where the probability vanishes: rejected outright
    assert nqt.chi2_test([3, 1], [1.0, 0.0]).pvalue == 0
    # the documented false-alarm rate: on exact multinomial draws P(p < alpha) ~ alpha
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(40))
    pvalues = np.array(
        [nqt.chi2_test(rng.multinomial(4000, probs), probs).pvalue for _ in range(400)]
    )
    assert 0.02 < np.mean(pvalues < 0.05) < 0.09
    assert 0.06 < np.mean(pvalues < 0.1) < 0.15


def test_exact_sampling_and_a_biased_sampler(getkey):
    slow = Logistic(SPIN5, 2, jnp.complex128, key=jax.random.key(0))
    fast, state = _fast(slow)
    samples, result = nqt.assert_exact_sampling(fast, key=jax.random.key(1), state=state)
    assert samples.shape == (20_000, 5) and result.pvalue > nqt.ALPHA
    # a biased sampler: |psi|^1 instead of |psi|^2 (the same parameters)
    biased = nqz.sample(Logistic(SPIN5, 1, jnp.complex128, key=jax.random.key(0)), 20_000,
                        key=jax.random.key(1))
    with pytest.raises(AssertionError, match=r"do not follow(.|\n)*p-value .* < alpha=0.0001"
                                             r"(.|\n)*Largest deviations: x=\["):
        nqt.assert_samples_match(slow, biased)
    probs = np.exp(2 * np.asarray(slow(SPIN5.all_states())).real)
    assert nqt.sampler_chi2(probs, biased, SPIN5).pvalue < 1e-50
    assert nqt.sampler_chi2(probs, samples, SPIN5).pvalue > nqt.ALPHA
    # samples outside the space, wrong log-probabilities
    outside = np.asarray(samples).copy()
    outside[7, 2] = 3
    with pytest.raises(AssertionError, match=r"sample #7 x=\[.*\] is not a configuration"):
        nqt.assert_samples_match(slow, outside)
    few, log_prob = nqz.sample(fast, 100, key=getkey(), state=state, return_log_prob=True)
    nqt.assert_samples_match(slow, few, log_prob=log_prob, alpha=1e-6)
    wrong = log_prob.at[3].add(1e-9)
    with pytest.raises(AssertionError, match=r"log_prob of sample #3 .*relative error"):
        nqt.assert_samples_match(slow, few, log_prob=wrong)
    # a biased sampler behind the model: a fast twin whose steps drift samples another
    # distribution than its log psi (the same compilation as `fast`'s)
    drifting, state = _fast(slow, drift=0.05)
    with pytest.raises(AssertionError, match=r"log_prob of sample #\d+|do not follow"):
        nqt.assert_exact_sampling(drifting, key=jax.random.key(1), state=state)


def test_exact_sampling_constrained_and_mcmc(getkey):
    model = Logistic(SPIN6_SZ0, 2, key=jax.random.key(0))
    nqt.assert_exact_sampling(model, key=jax.random.key(2), n_samples=8000)
    rbm = nqz.models.RBM(SPIN5, param_dtype=jnp.complex128, key=jax.random.key(3))
    rng = np.random.default_rng(0)
    rbm = jax.tree.map(  # random parameters, peaked enough to tell |psi|^1 from |psi|^2
        lambda a: jnp.asarray(0.4 * (rng.normal(size=a.shape) + 1j * rng.normal(size=a.shape)))
        if eqx.is_inexact_array(a) else a,
        rbm,
    )
    sampler = nqz.mcmc.MetropolisLocal(SPIN5, n_chains=4096)
    samples, result = nqt.assert_mcmc_samples_match(sampler, rbm, key=jax.random.key(4))
    assert samples.shape == (4096, 5) and result.n_samples == 4096
    # a biased sampler: 1 chain in 8 stuck where chain 0 is (with consistent log-probabilities;
    # the same compiled sampler)
    with pytest.raises(AssertionError, match=r"do not follow .* p-value"):
        nqt.assert_mcmc_samples_match(Stuck(sampler), rbm, key=jax.random.key(4))


class Stuck:
    """A sampler whose chains `8k` all return the sample of chain 0: chains that do not mix."""

    def __init__(self, sampler):
        self.sampler, self.n_chains, self.hilbert = sampler, sampler.n_chains, sampler.hilbert
        self.machine_pow = sampler.machine_pow

    def init(self, model, key):
        return self.sampler.init(model, key)

    def sample(self, model, state, n_samples, n_discard):
        samples, state, info = self.sampler.sample(model, state, n_samples, n_discard=n_discard)
        samples = samples.at[::8].set(samples[0])
        return samples, state, eqx.tree_at(lambda i: i.log_prob, info, info.log_prob.at[::8].set(
            info.log_prob[0]))


# --------------------------------------------------------------------------------------------
# Symmetry


def _translations(n):
    return np.stack([np.roll(np.arange(n), -t) for t in range(n)])  # (T_t x)[i] = x[i + t]


class Projected(eqx.Module):
    """psi(x) = sum_t e^{-ikt} psi_0(T_t x): momentum k, psi(T_s x) = e^{iks} psi(x)."""

    rbm: nqz.models.RBM
    k: float = eqx.field(static=True)

    @property
    def hilbert(self):
        return self.rbm.hilbert

    def __call__(self, x):
        perms = _translations(self.hilbert.size)
        moved = jnp.asarray(x)[..., perms]  # (*batch, T, N)
        angles = -self.k * jnp.arange(len(perms), dtype=jnp.float64)
        phases = jnp.exp(jax.lax.complex(jnp.zeros_like(angles), angles))
        values = self.rbm(moved).astype(jnp.complex128)
        return jax.nn.logsumexp(values, axis=-1, b=jnp.broadcast_to(phases, values.shape))


def test_symmetric(getkey):
    n = SPIN5.size
    perms = _translations(n)
    rbm = nqz.models.RBM(SPIN5, param_dtype=jnp.complex128, key=getkey())
    invariant = Projected(rbm, 0.0)
    nqt.assert_symmetric(invariant, perms, key=getkey())
    k = 2 * np.pi * 2 / n
    momentum = Projected(rbm, k)
    nqt.assert_symmetric(momentum, perms.tolist(), np.exp(1j * k * np.arange(n)), key=getkey())
    with pytest.raises(AssertionError, match=r"g=\d \(perms\[\d\] = .*psi\(g x\)/psi\(x\) = "
                                             r".*expected chi_g = 1"):
        nqt.assert_symmetric(momentum, perms, key=getkey())
    # a non-symmetric model
    with pytest.raises(AssertionError, match=r"RBM is not symmetric: for group element g="):
        nqt.assert_symmetric(rbm, perms, key=getkey())
    nqt.assert_symmetric(rbm, perms[:1], key=getkey())  # the identity alone
    with pytest.raises(ValueError, match=r"perms\[1\] .* is not a permutation"):
        nqt.assert_symmetric(rbm, [[0, 1, 2, 3, 4], [0, 0, 1, 2, 3]], key=getkey())
    with pytest.raises(ValueError, match="characters"):
        nqt.assert_symmetric(rbm, perms, np.ones(2), key=getkey())


# --------------------------------------------------------------------------------------------
# Shape checking


class Unchecked(eqx.Module):
    """No annotations: a wrong width fails inside jnp (or not at all, with `total`)."""

    weights: Array
    hilbert: nqz.hilbert.Spin = eqx.field(static=True)
    total: bool = eqx.field(static=True)

    def __call__(self, x):
        x = jnp.asarray(x).astype(self.weights.dtype)
        return jnp.sum(x, -1) if self.total else x @ self.weights


def test_shape_checked(getkey):
    nqt.assert_shape_checked(nqz.models.RBM(SPIN5, key=getkey()))
    nqt.assert_shape_checked(nqz.models.FastARNNConv1D(SPIN5, 2, 3, 2, key=getkey()))
    box = nqz.hilbert.Particles(3, (2.0,), pbc=True)
    nqt.assert_shape_checked(nqz.models.DeepSetRelDistance(box, 2, 2, 4, 4, key=getkey()))
    weights = jnp.ones(5)
    with pytest.raises(AssertionError, match=r"Unchecked\(x of shape \(2, 6\)\) .* raised "
                                             r"TypeError, but its message does not name"):
        nqt.assert_shape_checked(Unchecked(weights, SPIN5, False))
    with pytest.raises(AssertionError, match=r"x of shape \(2, 6\)\) was accepted"):
        nqt.assert_shape_checked(Unchecked(weights, SPIN5, True))
    nqt.assert_shape_checked(Unchecked(weights, SPIN5, False), match="contracting dimensions")


# --------------------------------------------------------------------------------------------
# NetKet parity


def test_netket_parity(getkey, monkeypatch):
    from nqzoo.interop.netket import to_netket

    rbm = nqz.models.RBM(SPIN5, param_dtype=jnp.complex128, key=getkey())
    nk_rbm, variables = to_netket(rbm)
    nqt.assert_netket_parity(rbm, nk_rbm, variables, key=getkey())
    # converted parameters that differ
    other = eqx.tree_at(lambda m: m.visible_bias, rbm, rbm.visible_bias.at[2].add(1e-9))
    with pytest.raises(AssertionError, match=r"RBM and NetKet's RBM disagree: at config"):
        nqt.assert_netket_parity(other, nk_rbm, variables, key=getkey())
    # without NetKet: a skip under pytest, an ImportError naming the extra otherwise
    monkeypatch.setitem(sys.modules, "netket", None)
    with pytest.raises(pytest.skip.Exception, match="needs NetKet"):
        nqt.assert_netket_parity(rbm, nk_rbm, variables, key=getkey())
    monkeypatch.delitem(sys.modules, "pytest")
    with pytest.raises(ImportError, match=r"nqzoo\[netket\]"):
        nqt.require_netket()


# --------------------------------------------------------------------------------------------
# Import cost and the pytest plugin (a fresh process)


_USER_TESTS = """
import jax, jax.numpy as jnp, pytest

@pytest.fixture
def standard():
    with jax.numpy_dtype_promotion("standard"):
        yield

def test_keys(getkey):
    assert not jnp.array_equal(jax.random.key_data(getkey()), jax.random.key_data(getkey()))

def test_x64(x64):
    assert jnp.zeros(1).dtype == jnp.float64

def test_strict(standard, strict_promotion):  # the plugin's fixture inside a standard one
    with pytest.raises(Exception, match="promot"):
        jnp.ones(2, jnp.float32) + jnp.ones(2, jnp.int32)

def test_session():  # --nqzoo-strict-promotion; x64 off
    assert jax.config.jax_numpy_dtype_promotion == "strict"
    assert jnp.zeros(1).dtype == jnp.float32
"""


_IMPORT_THEN_PYTEST = """
import sys
import nqzoo, nqzoo.testing
assert "pytest" not in sys.modules and "netket" not in sys.modules, sorted(sys.modules)
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def test_import_and_plugin(tmp_path):
    """One fresh process: importing nqzoo.testing imports neither pytest nor NetKet; then a
    user's test suite with the plugin (enabled in its conftest.py) runs in it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    (tmp_path / "test_user.py").write_text(_USER_TESTS)
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["nqzoo.testing.pytest_plugin"]\n')
    run = subprocess.run(
        [sys.executable, "-c", _IMPORT_THEN_PYTEST, "-q", "-p", "no:cacheprovider",
         "--nqzoo-strict-promotion", "-p", "no:xdist", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert run.returncode == 0 and "4 passed" in run.stdout, run.stdout + run.stderr
