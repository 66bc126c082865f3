"""Constrained spaces (Spin total_sz, Fock n_particles) in every autoregressive model, and the
Marshall sign rule.

Exact properties on small spaces: normalisation over the constrained space, log psi = -inf
outside it, fast == slow, every sample in the space, a chi-squared test of the samples, the
site-by-site allowed values against brute-force enumeration, and the sign rule against the
rotated Heisenberg operator.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
from jaxtyping import Array, ArrayLike, Float, Int, Num

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.hilbert import Fock, Qubit, Spin
from nqzoo.interop.netket import hilbert_from_netket, hilbert_to_netket

from .helpers import FastLogistic, Logistic, netket_promotion, randomize_numpy


def _unconstrained(hilbert):
    if isinstance(hilbert, Spin):
        return Spin(hilbert.s, hilbert.N)
    return Fock(hilbert.n_max, hilbert.N)


_call = eqx.filter_jit(lambda model, x: model(x))


@eqx.filter_jit
def _log_psi_and_grad(model, x):
    return model(x), eqx.filter_grad(lambda m: jnp.sum(m(x).real))(model)


# --------------------------------------------------------------------------------------------
# Hilbert spaces: Fock(n_max, N, n_particles), the allowed values of a site


def test_fock_n_particles_matches_netket():
    hilbert = Fock(2, 4, n_particles=3)
    assert hilbert.constrained and hilbert.index_sum_constraint == 3
    states = np.asarray(hilbert.all_states())
    with netket_promotion():
        nk_hi = hilbert_to_netket(hilbert)
        nk_states = np.asarray(nk_hi.all_states())
    assert nk_hi.n_particles == 3 and nk_hi.n_max == 2 and nk_hi.size == 4
    np.testing.assert_array_equal(states, nk_states)  # same states, same order
    assert hilbert_from_netket(nk_hi) == hilbert
    assert hilbert_from_netket(nk.hilbert.Fock(None, 3, n_particles=2)) == Fock(2, 3, 2)
    # NetKet's n_max=None with n_particles means n_max = n_particles
    assert Fock(None, 3, n_particles=2) == Fock(2, 3, n_particles=2)


@pytest.mark.parametrize(
    "hilbert", [Fock(2, 4, n_particles=3), Spin(1, 4, total_sz=1), Spin(0.5, 6, total_sz=-1)]
)
def test_random_state_uniform_on_the_constrained_space(hilbert, getkey):
    x = np.asarray(hilbert.random_state(getkey(), 8000))
    assert x.shape == (8000, hilbert.size) and x.dtype == np.int8
    assert hilbert._allowed(x).all()
    full = _unconstrained(hilbert)
    uniform = np.asarray(hilbert._allowed(np.asarray(full.all_states())), float)
    nqt.assert_samples_match(uniform, x, full, alpha=nqt.ALPHA)  # p-value >= 1e-4


@pytest.mark.parametrize(
    "hilbert",
    [Spin(0.5, 5, total_sz=0.5), Spin(1, 4, total_sz=-2), Fock(2, 4, n_particles=5),
     Fock(3, 3, n_particles=0), Spin(0.5, 4)],
    ids=repr,
)
def test_allowed_local_indices_against_enumeration(hilbert):
    """Value k is allowed at site i after a prefix iff some allowed state extends prefix + k."""
    full = _unconstrained(hilbert)
    every = np.asarray(full.states_to_local_indices(full.all_states()))
    valid = every[np.asarray(hilbert._allowed(np.asarray(full.all_states())))]
    n, local_size = hilbert.size, hilbert.local_size
    prefixes, sites, sums, expected = [], [], [], []
    for i in range(n):
        for prefix in {tuple(row[:i]) for row in every}:
            extends = (valid[:, :i] == np.asarray(prefix, int)).all(axis=1)
            sites.append(i)
            sums.append(sum(prefix))
            expected.append([np.any(extends & (valid[:, i] == k)) for k in range(local_size)])
            prefixes.append(prefix)
    got = hilbert.allowed_local_indices(np.asarray(sites), np.asarray(sums))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    assert got.shape == (len(sites), local_size) and n == hilbert.N


def test_unreachable_constraints_name_the_argument():
    with pytest.raises(ValueError, match=r"n_particles=9 is not reachable.*n_max=2"):
        Fock(2, 4, n_particles=9)
    with pytest.raises(ValueError, match=r"n_particles must be an integer >= 0.*n_particles=-1"):
        Fock(2, 4, n_particles=-1)
    with pytest.raises(TypeError, match=r"parameter 'n_particles'"):
        Fock(2, 4, n_particles=1.5)
    with pytest.raises(ValueError, match=r"n_max=None"):
        Fock(None, 4)
    with pytest.raises(ValueError, match=r"total_sz=3 is not reachable"):
        Spin(0.5, 4, total_sz=3)
    with pytest.raises(ValueError, match=r"total_sz=1 has the wrong parity"):
        Spin(0.5, 5, total_sz=1)


# --------------------------------------------------------------------------------------------
# Models: normalisation, -inf outside, fast == slow, gradients


class EagerLogistic(nqz.models.AbstractARNN):
    """A user model that overrides `conditional` itself, knowing nothing of constraints."""

    slow: Logistic

    @property
    def hilbert(self):
        return self.slow.hilbert

    @property
    def machine_pow(self):
        return self.slow.machine_pow

    def conditionals_log_psi(self, x):
        return self.slow.conditionals_log_psi(x)

    def conditional(
        self, x: Num[ArrayLike, " {self.hilbert.size}"], index: Int[ArrayLike, ""], state=None
    ) -> tuple[Float[Array, " {self.hilbert.local_size}"], eqx.nn.State | None]:
        row = self.slow.conditionals_log_psi(x)[index]  # unconstrained probabilities
        return jnp.exp(self.machine_pow * row.real), state


def _model(kind, hilbert, dtype, machine_pow):
    """(fast, state, slow), random parameters."""
    key = jax.random.key(0)
    if kind == "user":
        slow = Logistic(hilbert, machine_pow, dtype, scale=0.7, key=key)
        fast, state = eqx.nn.make_with_state(FastLogistic)(slow)
        return fast, state, slow
    if kind == "LSTM2D":  # a snake through a 2x3 lattice: the order is not the site order
        fast, state = eqx.nn.make_with_state(nqz.models.FastLSTMNet)(
            hilbert, 2, 3, graph=nqz.lattice.Grid((2, 3), pbc=False), param_dtype=dtype,
            machine_pow=machine_pow, key=key,
        )
        assert list(fast.reorder(np.arange(6))) == [0, 1, 2, 5, 4, 3]
        fast = randomize_numpy(fast, seed=1, scale=0.7)
        return fast, state, fast.to_slow()
    hyper = {
        "Dense": dict(layers=2, features=3),
        "Conv1D": dict(layers=2, features=3, kernel_size=3),
        "Conv2D": dict(layers=2, features=3, kernel_size=(2, 3), lattice_shape=(2, 3)),
    }[kind]
    cls = getattr(nqz.models, f"FastARNN{kind}")
    fast, state = eqx.filter_jit(eqx.nn.make_with_state(cls))(
        hilbert, param_dtype=dtype, machine_pow=machine_pow, key=key, **hyper
    )
    fast = randomize_numpy(fast, seed=1, scale=0.7)
    return fast, state, fast.to_slow()


@eqx.filter_jit
def _everything(fast, slow, x):
    """log psi (fast and slow), constrained conditionals (slow), and the gradient of the slow
    model's sum_x |psi(x)|^p over every configuration, inside the space and outside."""

    def norm(model):
        return jnp.sum(jnp.exp(model.machine_pow * model(x).real))

    return fast(x), slow(x), slow.conditionals(x), eqx.filter_grad(norm)(slow)


CASES = [
    # kind, hilbert, dtype, machine_pow
    ("Dense", Spin(0.5, 6, total_sz=0), jnp.complex128, 2),
    ("Conv1D", Fock(2, 6, n_particles=4), jnp.float64, 1),
    ("Conv2D", Spin(1, 6, total_sz=-1), jnp.float64, 2),
    ("user", Fock(2, 5, n_particles=6), jnp.complex128, 1),
    ("LSTM2D", Spin(0.5, 6, total_sz=0), jnp.complex128, 2),
]


@pytest.mark.parametrize(
    "kind, hilbert, dtype, machine_pow",
    CASES,
    ids=[f"{c[0]}-{c[1]!r}-{jnp.dtype(c[2]).name}-mp{c[3]}" for c in CASES],
)
def test_normalised_on_the_constrained_space(kind, hilbert, dtype, machine_pow):
    fast, state, slow = _model(kind, hilbert, dtype, machine_pow)
    assert fast.hilbert == slow.hilbert == hilbert
    full = _unconstrained(hilbert).all_states()
    inside = np.asarray(hilbert._allowed(np.asarray(full)))
    *outputs, grad_norm = _everything(fast, slow, full)
    log_fast, log_slow, cond = map(np.asarray, outputs)
    # sum_x |psi(x)|^p = 1 over the constrained space, fast and slow, and no weight outside
    for model in (fast, slow):
        nqt.assert_normalized(model, rtol=1e-12)
    for log_psi in (log_fast, log_slow):
        assert np.all(np.isfinite(log_psi[inside]))
        assert np.all(np.isneginf(log_psi[~inside].real))  # -inf outside, not a finite number
    np.testing.assert_allclose(log_fast[inside], log_slow[inside], rtol=1e-12, atol=1e-12)
    # the constrained conditionals: rows sum to 1 after a valid prefix, zero on banned values,
    # and the fast steps (along the model's order) give the same probabilities and amplitudes
    rows = cond[inside].sum(-1)
    np.testing.assert_allclose(rows, 1, rtol=1e-12)
    nqt.assert_fast_matches_slow(fast, state, full, slow=slow, atol=1e-13)
    order = np.asarray(fast.reorder(np.arange(hilbert.size)))
    idx = np.asarray(hilbert.states_to_local_indices(full))[:, order]  # in the model's order
    before = np.cumsum(idx, axis=-1) - idx
    allowed = np.asarray(hilbert.allowed_local_indices(np.arange(hilbert.size), before))
    assert np.all(cond[:, order][~allowed] == 0)
    # the norm is 1 for all parameters, so its gradient vanishes: the gradients of log psi
    # are finite inside the space, and -inf outside leaks no NaN (each term is
    # p |psi|^p grad Re log psi)
    if kind == "user":  # Logistic's acausal weights are zero, not masked: leave them out
        causal = np.tril(np.ones((hilbert.size, hilbert.size)), -1)[:, None, :]
        causal_grad = np.asarray(grad_norm.weights) * causal
        grad_norm = eqx.tree_at(lambda m: m.weights, grad_norm, causal_grad)
    for g in jax.tree.leaves(grad_norm):
        np.testing.assert_allclose(g, 0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Sampling


_sample = eqx.filter_jit(nqz.sample)
N_SAMPLES = 20_000


@pytest.mark.parametrize(
    "kind, hilbert, dtype, machine_pow",
    [
        ("Conv1D", Spin(0.5, 6, total_sz=0), jnp.complex128, 2),
        ("Dense", Fock(2, 4, n_particles=3), jnp.float64, 1),
        ("eager", Spin(1, 4, total_sz=1), jnp.float64, 2),
    ],
    ids=["Conv1D-spin", "Dense-fock", "user-conditional-spin1"],
)
def test_samples_in_the_space_and_distributed_as_psi(kind, hilbert, dtype, machine_pow):
    if kind == "eager":
        slow = Logistic(hilbert, machine_pow, dtype, scale=0.7, key=jax.random.key(3))
        fast, state = EagerLogistic(slow), None
    else:
        fast, state, slow = _model(kind, hilbert, dtype, machine_pow)
    key = jax.random.key(7)
    x, log_prob = _sample(fast, N_SAMPLES, key=key, state=state, return_log_prob=True)
    x_slow, log_prob_slow = _sample(slow, N_SAMPLES, key=key, return_log_prob=True)
    assert x.dtype == hilbert.dtype and hilbert._allowed(np.asarray(x)).all()
    np.testing.assert_array_equal(x, x_slow)  # fast == slow under the constraint
    np.testing.assert_allclose(log_prob, log_prob_slow, rtol=1e-12, atol=1e-12)
    nqt.assert_normalized(slow, rtol=1e-12)  # over the space, no weight outside it
    # every sample inside the space, log_prob = p Re log psi (to 1e-12), p-value >= 1e-4
    nqt.assert_samples_match(slow, x, log_prob=log_prob, alpha=nqt.ALPHA)
    full = _unconstrained(hilbert)
    probs = np.exp(machine_pow * np.asarray(_call(slow, full.all_states())).real)
    # the test has power: the network's unconstrained |psi|^p, renormalised on the space
    # (what a sampler that ignored the constraint and rejected outside states would give),
    # is a different distribution that the samples reject
    cond = np.asarray(eqx.filter_jit(slow.conditionals_log_psi)(full.all_states()))
    idx = np.asarray(full.states_to_local_indices(full.all_states()))
    free = np.take_along_axis(cond, idx[..., None], axis=-1)[..., 0].sum(-1)
    wrong = np.exp(machine_pow * free.real) * (probs > 0)
    with pytest.raises(AssertionError, match=r"do not follow .* < alpha=0.0001"):
        nqt.assert_samples_match(wrong, x, full, alpha=nqt.ALPHA)


def test_single_precision():
    dtype = jnp.float32
    hilbert = Spin(0.5, 8, total_sz=0)
    fast, state, slow = _model("Conv1D", hilbert, dtype, 2)
    real = jnp.finfo(dtype).dtype
    states = hilbert.all_states()
    x, log_prob = _sample(fast, 512, key=jax.random.key(1), state=state, return_log_prob=True)
    assert log_prob.dtype == real and hilbert._allowed(np.asarray(x)).all()
    log_psi, grads = _log_psi_and_grad(slow, jnp.concatenate([states, x]))
    assert log_psi.dtype == dtype
    nqt.assert_normalized(slow, rtol=1e-5)
    np.testing.assert_allclose(log_prob, 2 * log_psi[len(states) :].real, rtol=1e-4, atol=1e-4)
    assert all(g.dtype == dtype and np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_a_constraint_that_cannot_be_masked(getkey):
    """A space constrained by anything but a fixed sum is refused by every AR model (rather
    than sampled wrongly), with a message saying which constraints work."""

    class EvenQubits(Qubit):
        """Qubits with an even number of ones: not a fixed sum."""

        @property
        def constrained(self):
            return True

        def _allowed(self, states):
            return states.sum(-1) % 2 == 0

    hilbert = EvenQubits(4)
    assert hilbert.index_sum_constraint is None
    for make in [
        lambda: nqz.models.ARNNDense(hilbert, 2, 3, key=getkey()),
        lambda: eqx.nn.make_with_state(nqz.models.FastARNNConv1D)(hilbert, 2, 3, 2, key=getkey()),
        lambda: Logistic(hilbert, key=getkey()),
    ]:
        with pytest.raises(ValueError, match=r"fixed sum of local values.*EvenQubits"):
            make()
    with pytest.raises(ValueError, match="cannot be enforced site by site"):
        hilbert.allowed_local_indices(0, 0)


# --------------------------------------------------------------------------------------------
# Marshall's sign rule


def _heisenberg_energies(signed_log_psi, log_psi, hilbert, lattice):
    psi_signed = np.exp(np.asarray(signed_log_psi, complex))
    psi = np.exp(np.asarray(log_psi, complex))
    plain = nqz.operators.Heisenberg(hilbert, lattice, sign_rule=False).to_dense()
    rotated = nqz.operators.Heisenberg(hilbert, lattice, sign_rule=True).to_dense()
    return np.vdot(psi_signed, plain @ psi_signed), np.vdot(psi, rotated @ psi)


_both = eqx.filter_jit(lambda a, b, x: (a(x), b(x)))


@pytest.mark.parametrize(
    "lattice, hilbert",
    [
        (nqz.lattice.Chain(6), Spin(0.5, 6, total_sz=0)),
        (nqz.lattice.Square(2), Spin(0.5, 4)),
        (nqz.lattice.Grid((2, 3), pbc=(True, False)), Spin(0.5, 6, total_sz=0)),
    ],
    ids=["chain6-sz0", "square2x2", "grid2x3-sz0"],
)
def test_marshall_sign_rotates_heisenberg(lattice, hilbert):
    fast, state, _ = _model("Conv1D", hilbert, jnp.float64, 2)
    signed = nqz.models.marshall_sign(fast, lattice)
    assert isinstance(signed, nqz.models.MarshallSignARNN)
    assert isinstance(signed, nqz.models.AbstractARNN)
    states = hilbert.all_states()
    log_signed, log_psi = map(np.asarray, _both(signed, fast, states))
    e_signed, e_rotated = _heisenberg_energies(log_signed, log_psi, hilbert, lattice)
    assert abs(e_signed - e_rotated) < 1e-12 * max(1, abs(e_rotated))
    # the sign differs from the plain model's (the test is not vacuous) ...
    e_plain, _ = _heisenberg_energies(log_psi, log_psi, hilbert, lattice)
    assert abs(e_plain - e_rotated) > 1e-3
    # ... and it is exactly (-1)^(down spins on sublattice B)
    odd = np.asarray(lattice.sublattice()) == 1
    expected = (-1.0) ** np.sum((np.asarray(states) == -1) & odd, axis=-1)
    np.testing.assert_allclose(np.exp(log_signed - log_psi), expected, atol=1e-14)
    if lattice.n_dim == 1:
        return
    # still autoregressive: the same probabilities, the same samples, the same normalisation
    x, lp = _sample(signed, 256, key=jax.random.key(2), state=state, return_log_prob=True)
    np.testing.assert_array_equal(x, _sample(fast, 256, key=jax.random.key(2), state=state))
    np.testing.assert_allclose(lp, 2 * np.asarray(_call(signed, x).real), rtol=1e-12)
    assert hilbert._allowed(np.asarray(x)).all()
    # one step: the same probabilities, and the log-conditional with the phase of its site
    step = eqx.filter_jit(lambda m, s, x, i: (m.conditional(x, i, s)[0], m.step(x, i, s)[0]))
    for site in (1, 2):
        p_signed, log_signed = step(signed, state, states[3], site)
        p, log = step(fast, state, states[3], site)
        np.testing.assert_array_equal(p_signed, p)
        sign = np.array([1.0, -1.0 if odd[site] else 1.0])
        np.testing.assert_allclose(np.exp(log_signed), sign * np.exp(log), atol=1e-15)


class _Stub(eqx.Module):
    """Anything with a `hilbert`."""

    hilbert: object = eqx.field(static=True)


def test_marshall_sign_on_any_model_and_bad_input(getkey):
    hilbert, lattice = Spin(0.5, 6), nqz.lattice.Chain(6)
    rbm = randomize_numpy(
        nqz.models.RBM(hilbert, alpha=1, param_dtype=jnp.complex128, key=getkey()), 4, 0.3
    )
    signed = nqz.models.marshall_sign(rbm, lattice)
    assert isinstance(signed, nqz.models.MarshallSign)
    assert not isinstance(signed, nqz.models.AbstractARNN)
    states = hilbert.all_states()
    e_signed, e_rotated = _heisenberg_energies(*_both(signed, rbm, states), hilbert, lattice)
    assert abs(e_signed - e_rotated) < 1e-12 * max(1, abs(e_rotated))
    with pytest.raises(ValueError, match="bipartite"):
        nqz.models.marshall_sign(rbm, nqz.lattice.Grid((3, 2), pbc=(True, False)))
    with pytest.raises(ValueError, match="has 8 sites"):
        nqz.models.marshall_sign(rbm, nqz.lattice.Chain(8))
    for space in (Spin(1, 6), Fock(2, 6), None):
        with pytest.raises(TypeError, match="two-level"):
            nqz.models.marshall_sign(_Stub(space), lattice)
    with pytest.raises(TypeError, match="parameter .lattice."):
        nqz.models.marshall_sign(rbm, "chain")
    with pytest.raises(TypeError, match="parameter .model."):
        nqz.models.MarshallSignARNN(rbm, lattice)
