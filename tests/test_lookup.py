"""Lookup tables (nqzoo.models.AbstractLookupModel): an update equals a recomputation, and the
samplers and local energies that use them give what evaluating the model gives."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz

from .helpers import randomize


CHAIN = nqz.lattice.Chain(8)
SPIN = nqz.hilbert.Spin(0.5, 8)
SPIN_SZ0 = nqz.hilbert.Spin(0.5, 8, total_sz=0)
FOCK = nqz.hilbert.Fock(3, 8)


class Plain(eqx.Module):
    """The same model without its lookup table (evaluated on every configuration)."""

    model: eqx.Module

    @property
    def hilbert(self):
        return self.model.hilbert

    def __call__(self, x):
        return self.model(x)


MODELS = [
    ("RBM real", lambda h, k: nqz.models.RBM(h, alpha=2, key=k)),
    ("RBM complex", lambda h, k: nqz.models.RBM(h, alpha=2, param_dtype=jnp.complex128, key=k)),
    ("RBM no biases", lambda h, k: nqz.models.RBM(h, alpha=1, use_hidden_bias=False,
                                                   use_visible_bias=False, key=k)),
    ("RBM float32", lambda h, k: nqz.models.RBM(h, alpha=2, param_dtype=jnp.float32, key=k)),
    ("RBM tanh", lambda h, k: nqz.models.RBM(h, alpha=1, activation=jnp.tanh, key=k)),
    ("RBMModPhase", lambda h, k: nqz.models.RBMModPhase(h, alpha=2, key=k)),
]


def _model(build, hilbert, key):
    return randomize(build(hilbert, key), jax.random.fold_in(key, 1), scale=0.5)


@pytest.mark.parametrize("name, build", MODELS, ids=[m[0] for m in MODELS])
def test_update_equals_recomputation(name, build, getkey):
    model = _model(build, FOCK, getkey())
    x = FOCK.random_state(getkey(), (6,))
    x_new = FOCK.random_state(getkey(), (6,))
    # change sites 1 and 5 (row 0 changes only site 1: site 5 is listed with old == new)
    sites = jnp.broadcast_to(jnp.array([1, 5]), (6, 2))
    y = x.at[:, 1].set(x_new[:, 1]).at[1:, 5].set(x_new[1:, 5])
    old = jnp.take_along_axis(x, sites, axis=-1)
    new = jnp.take_along_axis(y, sites, axis=-1)
    updated = model.log_psi_from_lookup(model.update_lookup(model.lookup(x), sites, old, new))
    direct = model(y)
    assert updated.dtype == direct.dtype
    tol = 1e-5 if "float32" in name else 1e-12
    np.testing.assert_allclose(np.asarray(updated), np.asarray(direct), rtol=tol, atol=tol)
    # and __call__ reads its own table
    np.testing.assert_array_equal(model.log_psi_from_lookup(model.lookup(y)), direct)


@pytest.mark.parametrize("name, build", MODELS, ids=[m[0] for m in MODELS])
def test_fast_log_psi_equals_log_psi(name, build, getkey):
    # the samplers' and local energies' fast path reads the same log psi off the table
    model = _model(build, FOCK, getkey())
    table = model.lookup(FOCK.random_state(getkey(), (16,)))
    fast, exact = model.fast_log_psi_from_lookup(table), model.log_psi_from_lookup(table)
    assert fast.dtype == exact.dtype and fast.shape == exact.shape == (16,)
    tol = 1e-6 if "float32" in name else 1e-13
    np.testing.assert_allclose(np.asarray(fast), np.asarray(exact), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype, m", [(jnp.float64, 7), (jnp.float64, 2500), (jnp.float32, 300)])
def test_log_cosh_sum(dtype, m, getkey):
    # one product per block (blocks below the overflow of 2^m), huge and zero entries
    from nqzoo.models._lookup import log_cosh_sum

    theta = 3 * jax.random.normal(getkey(), (5, m), dtype)
    theta = theta.at[0, 0].set(1e4).at[1, 1].set(-800.0).at[2, :].set(0.0)
    out = log_cosh_sum(theta)
    ref = np.sum(np.logaddexp(np.float64(theta), -np.float64(theta)) - np.log(2), axis=-1)
    assert out.dtype == dtype and out.shape == (5,)
    tol = 1e-5 if dtype == jnp.float32 else 1e-13
    np.testing.assert_allclose(np.asarray(out, np.float64), ref, rtol=tol, atol=tol * m)
    assert np.asarray(out)[2] == 0.0


@pytest.mark.parametrize(
    "rule, hilbert",
    [
        (nqz.mcmc.LocalRule(), SPIN),
        (nqz.mcmc.LocalRule(), FOCK),
        (nqz.mcmc.ExchangeRule(lattice=CHAIN, d_max=2), SPIN_SZ0),
    ],
    ids=["local spin", "local fock", "exchange"],
)
def test_rules_report_the_sites_they_change(rule, hilbert, getkey):
    # propose_changes: the proposals of propose, and the sites where they differ from x
    x = hilbert.random_state(getkey(), (64,))
    aux = rule.init_aux(hilbert, x)
    move = rule.random(hilbert, getkey(), 1, 64, jnp.float64)
    move = jax.tree.map(lambda r: r[0], move)
    x_new, _, aux_new = rule.propose(hilbert, x, aux, move)
    y, _, aux_y, (sites, old, new) = rule.propose_changes(hilbert, x, aux, move)
    np.testing.assert_array_equal(x_new, y)
    # the carried data (the exchange rule's differing edges, updated near the swap only)
    # equal those of the proposals
    for a, b in ((aux_new, aux_y), (rule.init_aux(hilbert, x_new), aux_y)):
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_array_equal(u, v)
    assert sites.shape == old.shape == new.shape == (64, rule.max_changed)
    rebuilt = np.array(x)
    for k in range(rule.max_changed):
        np.testing.assert_array_equal(np.take_along_axis(np.asarray(x), sites[:, k:k + 1], 1)[:, 0],
                                      old[:, k])
        np.put_along_axis(rebuilt, np.asarray(sites[:, k:k + 1]), np.asarray(new[:, k:k + 1]), 1)
    np.testing.assert_array_equal(rebuilt, x_new)
    assert (np.asarray(x_new) != np.asarray(x)).any()


def test_changed_sites_helper():
    x = jnp.array([[1, 1, -1, -1], [1, -1, 1, -1], [1, 1, 1, 1]], dtype=jnp.int8)
    y = jnp.array([[1, -1, -1, 1], [1, -1, 1, -1], [-1, 1, 1, 1]], dtype=jnp.int8)
    sites, old, new = nqz._misc.changed_sites(x, y, 2)
    assert np.asarray(sites).tolist() == [[1, 3], [0, 0], [0, 0]]
    assert np.asarray(old).tolist() == [[1, -1], [1, 1], [1, 1]]
    assert np.asarray(new).tolist() == [[-1, 1], [1, 1], [-1, 1]]


OPERATORS = [
    ("Ising", SPIN, lambda: nqz.operators.Ising(SPIN, CHAIN, h=0.7)),
    ("Heisenberg J1-J2 sign", SPIN_SZ0,
     lambda: nqz.operators.Heisenberg(SPIN_SZ0, CHAIN, J2=0.4, sign_rule=True)),
    ("BoseHubbard", FOCK, lambda: nqz.operators.BoseHubbard(FOCK, CHAIN, U=1.3, J=0.6, V=0.2)),
]


@pytest.mark.parametrize("name, hilbert, build", OPERATORS, ids=[o[0] for o in OPERATORS])
def test_changed_sites_of_operators(name, hilbert, build, getkey):
    # every connected element equals x outside the sites the operator declares
    operator = build()
    x = hilbert.random_state(getkey(), (32,))
    x_conn, _ = operator.connected(x)
    sites = operator.changed_sites
    assert sites.shape[0] == operator.n_conn
    outside = np.ones(x_conn.shape, dtype=bool)
    for c in range(operator.n_conn):
        outside[:, c, sites[c]] = False
    same = np.asarray(x_conn == x[:, None, :])
    assert same[outside].all()
    assert not same.all()  # the test sees real changes


@pytest.mark.parametrize("name, hilbert, build", OPERATORS, ids=[o[0] for o in OPERATORS])
@pytest.mark.parametrize("model_name, build_model", MODELS[:2] + MODELS[-1:],
                         ids=["RBM real", "RBM complex", "RBMModPhase"])
def test_local_energy_with_lookup(name, hilbert, build, model_name, build_model, getkey):
    operator = build()
    model = _model(build_model, hilbert, getkey())
    x = hilbert.random_state(getkey(), (64,))
    fast = nqz.operators.local_energy(model, operator, x)
    plain = nqz.operators.local_energy(Plain(model), operator, x)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(plain), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(
    "make_sampler, hilbert",
    [
        (lambda h: nqz.mcmc.MetropolisLocal(h, n_chains=4), SPIN),
        (lambda h: nqz.mcmc.MetropolisExchange(h, lattice=CHAIN, d_max=2, n_chains=4), SPIN_SZ0),
        (lambda h: nqz.mcmc.MetropolisLocal(h, n_chains=4), FOCK),
    ],
    ids=["local spin", "exchange", "local fock"],
)
def test_sampler_with_lookup_draws_the_same_chains(make_sampler, hilbert, getkey):
    # the lookup path accepts exactly the proposals that evaluating the model accepts
    model = _model(MODELS[1][1], hilbert, getkey())
    sampler = make_sampler(hilbert)
    key = getkey()
    out = []
    for m in (model, Plain(model)):
        state = sampler.init(m, key)
        x, state, info = sampler.sample(m, state, 64, n_discard=3)
        out.append((x, state, info))
    (x1, s1, i1), (x2, s2, i2) = out
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(s1.n_accepted, s2.n_accepted)
    np.testing.assert_allclose(i1.log_prob, i2.log_prob, rtol=1e-12, atol=1e-12)
