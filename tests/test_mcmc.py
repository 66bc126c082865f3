"""nqzoo.mcmc: Metropolis samplers against exact |psi|^p (chi-squared), against NetKet's
samplers and statistics, counters, -inf and NaN, transformations (filter_jit, vmap, sharding),
float32 and bad input."""

import os
import subprocess
import sys
import textwrap
import types
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import nqzoo as nqz
import nqzoo.hilbert as hilbert
import nqzoo.lattice as lattice
import nqzoo.mcmc as mcmc
import nqzoo.models as models
import nqzoo.testing as nqt

from .helpers import netket_promotion, randomize


# -- helpers ----------------------------------------------------------------------------------


def _exact_probs(model, power):
    log_psi = np.asarray(model(model.hilbert.all_states()))
    log_p = power * log_psi.real
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def _rbm(hi, seed, dtype=jnp.float64, alpha=1, scale=0.5):
    model = models.RBM(hi, alpha=alpha, param_dtype=dtype, key=jax.random.key(seed))
    return randomize(model, jax.random.key(seed + 1), scale)


SPIN6 = hilbert.Spin(0.5, 6)
FOCK5 = hilbert.Fock(2, 5)
SPIN8_SZ0 = hilbert.Spin(0.5, 8, total_sz=0)
CHAIN8 = lattice.Chain(8)


# -- correctness: chi-squared against exact |psi|^p --------------------------------------------

# One independent sample per chain: every chain runs n_discard sweeps from a uniformly random
# start and keeps its configuration after one more sweep, so the samples are independent and
# Pearson's test applies as is. Threshold: p > 1e-3 for the right target (a seeded run; the
# test fails by chance with probability 1e-3 for a different seed), p < 1e-6 for the wrong one.
CHI2_CHAINS = 8192
CHI2_CASES = {
    "local-spin": (
        SPIN6,
        lambda hi, p: mcmc.MetropolisLocal(hi, n_chains=CHI2_CHAINS, machine_pow=p),
    ),
    "local-fock": (
        FOCK5,
        lambda hi, p: mcmc.MetropolisLocal(hi, n_chains=CHI2_CHAINS, machine_pow=p),
    ),
    "exchange-sz0": (
        SPIN8_SZ0,
        lambda hi, p: mcmc.MetropolisExchange(
            hi, lattice=CHAIN8, d_max=2, n_chains=CHI2_CHAINS, machine_pow=p
        ),
    ),
}


@pytest.mark.parametrize(
    "case, power", [("local-spin", 2), ("local-spin", 1), ("local-fock", 2), ("exchange-sz0", 2)]
)
def test_chi2_against_exact(case, power):
    hi, make = CHI2_CASES[case]
    model = _rbm(hi, seed=3, scale=0.3)  # peaked (max |psi|^2 ~ 0.3) but mixing in 20 sweeps
    sampler = make(hi, power)
    state = sampler.init(model, jax.random.key(10))
    samples, state, info = sampler.sample(model, state, CHI2_CHAINS, n_discard=20)
    # every sample a state of `hi` (else an AssertionError), Pearson's test against |psi|^p
    right = nqt.sampler_chi2(model, samples, hi, machine_pow=power).pvalue
    wrong = nqt.sampler_chi2(model, samples, hi, machine_pow=3 - power).pvalue  # |psi|^1 <-> ^2
    assert right > 1e-3, (case, power, right)
    assert wrong < 1e-6, (case, power, wrong)
    if hi.constrained:
        assert np.all(np.asarray(samples).sum(-1) == 0)
    # the carried log-probabilities are those of the returned samples
    np.testing.assert_allclose(info.log_prob, power * np.asarray(model(samples)).real, rtol=1e-12)
    np.testing.assert_allclose(state.log_prob, power * np.asarray(model(state.x)).real, rtol=1e-12)


def _von_mises_box():
    """One particle in a 2D box, periodic along x and open (hard walls) along y, with
    |psi|^2 = exp(2a cos(2 pi x / Lx) + 2 b y): a von Mises density along x and a truncated
    exponential along y."""
    box = hilbert.Particles(1, (1.0, 2.0), pbc=(True, False))
    a, b = 0.8, -0.6

    def log_psi(x):
        return a * jnp.cos(2 * jnp.pi * x[..., 0] / 1.0) + b * x[..., 1]

    return box, log_psi, a, b


def _binned_probs(a, b, power, n_x, n_y):
    """Exact probabilities of the n_x * n_y bins of the box (fine midpoint integration)."""
    fine = 200
    xs = (np.arange(n_x * fine) + 0.5) / (n_x * fine)
    ys = 2.0 * (np.arange(n_y * fine) + 0.5) / (n_y * fine)
    px = np.exp(power * a * np.cos(2 * np.pi * xs)).reshape(n_x, fine).sum(-1)
    py = np.exp(power * b * ys).reshape(n_y, fine).sum(-1)
    return np.outer(px, py).ravel()


def test_gaussian_chi2_periodic_and_walls():
    box, log_psi, a, b = _von_mises_box()
    n_chains = 8192
    sampler = mcmc.MetropolisGaussian(box, sigma=0.4, n_chains=n_chains, sweep_size=4)
    state = sampler.init(log_psi, jax.random.key(0))
    samples, state, info = sampler.sample(log_psi, state, n_chains, n_discard=25)
    x = np.asarray(samples)
    assert x.dtype == np.float64
    assert np.all((x[:, 0] >= 0) & (x[:, 0] < 1.0)), "wrapped into [0, Lx) along the periodic axis"
    assert np.all((x[:, 1] >= 0) & (x[:, 1] <= 2.0)), "never outside the walls"
    n_x, n_y = 16, 8
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=(n_x, n_y), range=[[0, 1], [0, 2]])
    assert nqt.chi2_test(counts.ravel(), _binned_probs(a, b, 2, n_x, n_y)).pvalue > 1e-3
    assert nqt.chi2_test(counts.ravel(), _binned_probs(a, b, 1, n_x, n_y)).pvalue < 1e-6
    assert 0 < float(info.acceptance) < 1


def test_gaussian_rule_is_netkets_on_a_periodic_box():
    # same numbers in, same proposal out: NetKet's GaussianRule wraps with `% L` on periodic
    # axes (nqzoo additionally maps a rounding result of exactly L to 0)
    box = hilbert.Particles(3, (2.0, 3.0), pbc=True)
    nk_box = nk.experimental.hilbert.Particle(
        N=3, geometry=nk.experimental.geometry.Cell(d=2, L=(2.0, 3.0), pbc=True)
    )
    rule = mcmc.GaussianRule(0.7)
    x = box.random_state(jax.random.key(0), 5)
    key = jax.random.key(1)
    noise = rule.random(box, key, 1, 5, x.dtype)[0]
    ours, corr, _ = rule.propose(box, x, None, noise)
    assert corr is None
    sampler = types.SimpleNamespace(hilbert=nk_box)  # all the rule reads of its sampler
    with netket_promotion():
        theirs, _ = nk.sampler.rules.GaussianRule(0.7).transition(sampler, None, None, None, key, x)
    # NetKet draws normal(key, (n_chains, size)): the same numbers as one step of ours
    np.testing.assert_array_equal(np.asarray(noise), np.asarray(jax.random.normal(key, (5, 6))))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-15)


# -- counters, -inf and NaN --------------------------------------------------------------------


def test_acceptance_counts_the_moves():
    # with sweep_size=1 and no discarding every step is a sample, and an accepted local move
    # always changes the configuration: the counter equals the number of changes
    model = _rbm(SPIN6, seed=5, scale=1.0)
    sampler = mcmc.MetropolisLocal(SPIN6, n_chains=8, sweep_size=1)
    state = sampler.init(model, jax.random.key(2))
    samples, new_state, info = sampler.sample(model, state, 8 * 50, n_discard=0)
    chains = np.asarray(sampler.by_chain(samples))  # (8, 50, 6)
    path = np.concatenate([np.asarray(state.x)[:, None], chains], axis=1)
    changes = np.any(path[:, 1:] != path[:, :-1], axis=-1).sum(axis=1)
    np.testing.assert_array_equal(info.n_accepted, changes)
    assert int(info.n_steps) == 50
    np.testing.assert_allclose(info.acceptance, changes.sum() / (8 * 50), rtol=1e-12)
    assert 0 < float(info.acceptance) < 1
    np.testing.assert_array_equal(new_state.n_accepted, changes)
    assert int(new_state.n_steps) == 50
    np.testing.assert_allclose(new_state.acceptance, info.acceptance, rtol=1e-12)
    np.testing.assert_array_equal(info.n_nan, 0)
    # the chain state continues: a second call adds to the counters
    _, newer, info2 = sampler.sample(model, new_state, 8 * 50, n_discard=0)
    assert int(newer.n_steps) == 100
    np.testing.assert_array_equal(newer.n_accepted, changes + np.asarray(info2.n_accepted))


@pytest.mark.parametrize("bad", [-jnp.inf, jnp.nan])
def test_outside_the_support(bad):
    # log psi = -inf (or NaN) unless site 0 is up: chains started there move into the
    # support, proposals out of it are never accepted, NaN proposals are counted
    rbm = _rbm(SPIN6, seed=7)

    def log_psi(x):
        return jnp.where(x[..., 0] > 0, rbm(x), bad)

    sampler = mcmc.MetropolisLocal(SPIN6, n_chains=4096)
    state = sampler.init(log_psi, jax.random.key(3))
    assert np.any(np.asarray(state.x)[:, 0] < 0)
    samples, state, info = sampler.sample(log_psi, state, 4096, n_discard=20)
    assert np.all(np.asarray(samples)[:, 0] > 0)
    assert np.all(np.isfinite(np.asarray(info.log_prob)))
    probs = _exact_probs(rbm, 2) * (np.asarray(SPIN6.all_states())[:, 0] > 0)
    # p-value 0 if a sample fell where psi vanishes
    assert nqt.sampler_chi2(probs, samples, SPIN6).pvalue > 1e-3
    if jnp.isnan(bad):
        assert int(np.sum(info.n_nan)) > 0
    else:
        np.testing.assert_array_equal(info.n_nan, 0)


def test_exchange_pairs_are_netkets():
    # d_max counts graph distance on the nearest-neighbour graph, as NetKet's clusters
    for lat in [lattice.Chain(8), lattice.Square(4), lattice.Grid((3, 4), pbc=False)]:
        g = nk.graph.Grid(list(lat.extent), pbc=list(lat.pbc))
        for d_max in [1, 2, 3]:
            rule = mcmc.ExchangeRule(lattice=lat, d_max=d_max)
            theirs = nk.sampler.rules.ExchangeRule(graph=g, d_max=d_max).clusters
            assert sorted(rule.edges) == sorted(map(tuple, np.asarray(theirs).tolist()))


def test_exchange_uniform_over_differing_edges():
    # the k-th differing edge: the proposals from a fixed state are uniform over the edges
    # whose ends differ (odd edge count, so the last block is partial)
    edges = [(i, j) for i in range(7) for j in range(i + 1, 7)][:17]
    rule = mcmc.ExchangeRule(edges=edges)
    hi = hilbert.Spin(0.5, 7)
    x = jnp.asarray([[1, -1, -1, 1, 1, -1, 1]], jnp.int8).repeat(8192, axis=0)
    aux = rule.init_aux(hi, x)
    random = rule.random(hi, jax.random.key(0), 1, 8192, jnp.float64)[0]
    new, log_corr, new_aux = jax.jit(lambda *a: rule.propose(hi, *a))(x, aux, random)
    differ = [k for k, (i, j) in enumerate(edges) if x[0, i] != x[0, j]]
    swapped = np.asarray(new != x)
    assert np.all(swapped.sum(-1) == 2)
    first, last = swapped.argmax(-1), swapped.shape[1] - 1 - swapped[:, ::-1].argmax(-1)
    edge_index = {e: k for k, e in enumerate(edges)}
    pairs, n_pairs = np.unique(np.stack([first, last], -1), axis=0, return_counts=True)
    counts = np.zeros(len(edges), int)
    for (i, j), n in zip(pairs, n_pairs):
        counts[edge_index[(int(i), int(j))]] = n
    assert set(np.nonzero(counts)[0]) == set(differ)
    assert nqt.chi2_test(counts[differ], np.ones(len(differ))).pvalue > 1e-3
    np.testing.assert_array_equal(new_aux, rule.init_aux(hi, new))
    n_new = np.asarray(new_aux).sum(-1)
    np.testing.assert_allclose(log_corr, np.log(len(differ)) - np.log(n_new), rtol=1e-12)
    # a configuration with nothing to swap is rejected (log correction -inf)
    frozen = jnp.ones((1, 7), jnp.int8)
    _, corr, _ = jax.jit(lambda *a: rule.propose(hi, *a))(
        frozen, rule.init_aux(hi, frozen), random[:1]
    )
    assert float(corr[0]) == -np.inf


# -- against NetKet ------------------------------------------------------------------------------


def _per_chain_acceptance(n_accepted, n_steps_per_chain):
    rates = np.asarray(n_accepted) / n_steps_per_chain
    return rates.mean(), rates.std(ddof=1) / np.sqrt(rates.size)


@pytest.mark.parametrize("kind", ["local", "exchange"])
def test_against_netket_sampler(kind):
    # the same model in NetKet's sampler and ours: the mean of two observables agrees with
    # the exact value and between the two within 4 error bars (NetKet's error convention), and
    # so do the acceptance rates (error from the spread over independent chains)
    from nqzoo.interop.netket import to_netket

    hi = hilbert.Spin(0.5, 8) if kind == "local" else SPIN8_SZ0
    model = _rbm(hi, seed=11, scale=0.25)  # mixes within the discarded sweeps
    n_chains, n_per_chain, n_discard = 64, 128, 16
    if kind == "local":
        ours = mcmc.MetropolisLocal(hi, n_chains=n_chains)
        nk_hi = nk.hilbert.Spin(0.5, 8)
        theirs = nk.sampler.MetropolisLocal(nk_hi, n_chains=n_chains)
    else:
        ours = mcmc.MetropolisExchange(hi, lattice=CHAIN8, n_chains=n_chains)
        nk_hi = nk.hilbert.Spin(0.5, 8, total_sz=0)
        theirs = nk.sampler.MetropolisExchange(nk_hi, graph=nk.graph.Chain(8), n_chains=n_chains)

    def observables(x):
        x = np.asarray(x, np.float64)
        stagger = (-1.0) ** np.arange(8)
        return {"log|psi|": np.asarray(model(x)).real, "M_st^2": (x @ stagger) ** 2}

    state = ours.init(model, jax.random.key(4))
    x_ours, _, info = ours.sample(model, state, n_chains * n_per_chain, n_discard=n_discard)
    module, variables = to_netket(model)
    with netket_promotion(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the sampler itself (MCState.sample would compile a second chain for the discarded
        # part): one chain of n_discard + n_per_chain sweeps, the first n_discard dropped
        nk_state = theirs.init_state(module, variables, seed=5)
        nk_state = theirs.reset(module, variables, nk_state)
        x_theirs, nk_state = theirs.sample(
            module, variables, state=nk_state, chain_length=n_discard + n_per_chain
        )
    x_theirs = np.asarray(x_theirs)[:, n_discard:]  # (n_chains, n_per_chain, N)
    assert x_theirs.shape == (n_chains, n_per_chain, 8)

    all_x = np.asarray(hi.all_states())
    probs = _exact_probs(model, 2)
    exact = {k: float(probs @ v) for k, v in observables(all_x).items()}
    ours_obs = {k: ours.by_chain(v) for k, v in observables(x_ours).items()}
    theirs_obs = {
        k: v.reshape(n_chains, n_per_chain) for k, v in observables(x_theirs.reshape(-1, 8)).items()
    }
    for name in exact:
        a = nqz.mcmc.statistics(ours_obs[name])
        with netket_promotion():
            b = nk.stats.statistics(theirs_obs[name])
        assert abs(float(a.mean) - exact[name]) < 4 * float(a.error_of_mean), name
        assert abs(float(b.mean) - exact[name]) < 4 * float(b.error_of_mean), name
        assert abs(float(a.mean) - float(b.mean)) < 4 * np.hypot(
            float(a.error_of_mean), float(b.error_of_mean)
        ), name
        assert float(a.R_hat) < 1.1
    steps = (n_discard + n_per_chain) * 8
    assert int(info.n_steps) == steps
    acc_ours, err_ours = _per_chain_acceptance(info.n_accepted, steps)
    acc_theirs, err_theirs = _per_chain_acceptance(
        nk_state.n_accepted_proc, int(nk_state.n_steps_proc) // n_chains
    )
    assert int(nk_state.n_steps_proc) // n_chains == steps
    np.testing.assert_allclose(info.acceptance, acc_ours, rtol=1e-12)
    assert abs(acc_ours - acc_theirs) < 4 * np.hypot(err_ours, err_theirs)
    assert 0.1 < acc_ours < 1


# -- statistics: NetKet's numbers ------------------------------------------------------------------


def _ar1(rng, shape, phi, complex_):
    noise = rng.normal(size=shape)
    if complex_:
        noise = noise + 1j * rng.normal(size=shape)
    out = np.zeros_like(noise)
    for t in range(shape[-1]):
        out[..., t] = noise[..., t] + (phi * out[..., t - 1] if t else 0)
    return out + 0.3


def test_statistics_equal_netkets():
    rng = np.random.default_rng(0)
    # chains as batches (>= 32 chains, odd length), blocks (< 32 chains), one chain (1D), too
    # short for either estimator (NaN errors); white noise and AR(1) with phi = 0.9
    cases = [(False, (40, 33)), (False, (8, 64)), (False, (500,)), (False, (3, 7))]
    cases += [(True, (40, 33)), (True, (8, 64))]
    fields = ["mean", "error_of_mean", "variance", "tau_corr", "R_hat"]
    for complex_, shape in cases:
        for phi in [0.0, 0.9]:
            data = _ar1(rng, shape, phi, complex_)
            ours = mcmc.statistics(data)
            assert isinstance(ours, mcmc.Stats)
            with netket_promotion():
                theirs = nk.stats.statistics(data)
            for name in fields:
                a, b = np.asarray(getattr(ours, name)), np.asarray(getattr(theirs, name))
                np.testing.assert_allclose(
                    a, b, rtol=1e-12, atol=0, equal_nan=True, err_msg=f"{name} {shape} {phi}"
                )
            assert ours.mean.dtype == (np.complex128 if complex_ else np.float64)
            assert all(getattr(ours, f).dtype == np.float64 for f in fields[1:])
            assert np.isfinite(float(ours.R_hat)) == (len(shape) == 2)  # one chain: no R_hat


def test_statistics_float32_jit_and_bad_input():
    data = jnp.asarray(np.random.default_rng(1).normal(size=(32, 64)), jnp.float32)
    stats = mcmc.statistics(data)
    assert all(leaf.dtype == jnp.float32 for leaf in stats)
    jitted = jax.jit(mcmc.statistics)(data)
    for a, b in zip(jitted, stats):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match="values must be"):
        mcmc.statistics(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="values must be"):
        mcmc.statistics(np.ones((0,)))


# -- transformations: filter_jit, vmap, sharding, float32, any model -------------------------------

SAMPLER_JIT = mcmc.MetropolisExchange(SPIN8_SZ0, lattice=CHAIN8, n_chains=8)


def test_filter_jit_equals_eager():
    model = _rbm(SPIN8_SZ0, seed=13)
    operator = nqz.operators.Heisenberg(SPIN8_SZ0, CHAIN8)
    state = SAMPLER_JIT.init(model, jax.random.key(0))

    @eqx.filter_jit
    def step(model, state):
        x, state, info = SAMPLER_JIT.sample(model, state, 64, n_discard=2)
        e_loc = nqz.operators.local_energy(model, operator, x)
        return x, e_loc, state, info

    x_jit, e_jit, state_jit, info_jit = step(model, state)
    x, state_eager, info = SAMPLER_JIT.sample(model, state, 64, n_discard=2)
    np.testing.assert_array_equal(x_jit, x)
    np.testing.assert_array_equal(state_jit.x, state_eager.x)
    np.testing.assert_array_equal(info_jit.n_accepted, info.n_accepted)
    assert e_jit.shape == (64,) and np.all(np.isfinite(e_jit))
    # a changed model (a training step) reuses the compilation and gives other samples
    other = randomize(model, jax.random.key(99))
    x_other, *_ = step(other, state)
    assert not np.array_equal(x_other, x_jit)
    # statistics of the local energies from the chain-major samples
    stats = mcmc.statistics(SAMPLER_JIT.by_chain(e_jit))
    np.testing.assert_allclose(stats.mean, e_jit.mean(), rtol=1e-12)


def test_vmap_over_keys_equals_separate_runs():
    model = _rbm(SPIN8_SZ0, seed=13)
    keys = jax.random.split(jax.random.key(1), 3)

    def run(key):
        state = SAMPLER_JIT.init(model, key)
        x, state, info = SAMPLER_JIT.sample(model, state, 64, n_discard=2)
        return x, state, info

    xs, states, infos = jax.vmap(run)(keys)
    assert xs.shape == (3, 64, 8) and infos.n_accepted.shape == (3, 8)
    for k in range(3):
        x, state, info = run(keys[k])
        np.testing.assert_array_equal(xs[k], x)
        np.testing.assert_array_equal(infos.n_accepted[k], info.n_accepted)
        np.testing.assert_allclose(states.log_prob[k], state.log_prob, rtol=1e-12)


# Runs with two host devices: the chains of the sampler of test_filter_jit_equals_eager
# sharded over both (NamedSharding of the chain axis), results saved for the parent to compare
# with its unsharded run.
SHARDED = textwrap.dedent(
    """
    import sys
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import nqzoo as nqz
    from tests.helpers import randomize

    assert jax.device_count() == 2
    hi = nqz.hilbert.Spin(0.5, 8, total_sz=0)
    model = nqz.models.RBM(hi, alpha=1, key=jax.random.key(13))
    model = randomize(model, jax.random.key(14), 0.5)  # _rbm(SPIN8_SZ0, seed=13)
    sampler = nqz.mcmc.MetropolisExchange(hi, lattice=nqz.lattice.Chain(8), n_chains=8)
    state = sampler.init(model, jax.random.key(0))
    mesh = Mesh(np.array(jax.devices()), ("chains",))
    chains, replicated = NamedSharding(mesh, P("chains")), NamedSharding(mesh, P())
    state = type(state)(
        x=jax.device_put(state.x, chains),
        log_prob=jax.device_put(state.log_prob, chains),
        key=jax.device_put(state.key, replicated),
        n_accepted=jax.device_put(state.n_accepted, chains),
        n_steps=jax.device_put(state.n_steps, replicated),
    )
    x, state, info = sampler.sample(model, state, 64, n_discard=2)
    for leaf in (x, state.x, info.n_accepted):
        assert len(leaf.sharding.device_set) == 2, leaf.sharding
        assert not leaf.sharding.is_fully_replicated, leaf.sharding
    np.savez(sys.argv[1], x=x, chain_x=state.x, n_accepted=info.n_accepted,
             log_prob=info.log_prob)
    """
)


def test_sharded_chains_equal_unsharded(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    out = tmp_path / "sharded.npz"
    result = subprocess.run(
        [sys.executable, "-c", SHARDED, str(out)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sharded = np.load(out)
    model = _rbm(SPIN8_SZ0, seed=13)
    state = SAMPLER_JIT.init(model, jax.random.key(0))
    x, state, info = SAMPLER_JIT.sample(model, state, 64, n_discard=2)
    np.testing.assert_array_equal(sharded["x"], x)
    np.testing.assert_array_equal(sharded["chain_x"], state.x)
    np.testing.assert_array_equal(sharded["n_accepted"], info.n_accepted)
    np.testing.assert_allclose(sharded["log_prob"], info.log_prob, rtol=1e-12)


def test_float32_models():
    model = _rbm(SPIN6, seed=17, dtype=jnp.float32)
    sampler = mcmc.MetropolisLocal(SPIN6, n_chains=4)
    state = sampler.init(model, jax.random.key(0))
    assert state.log_prob.dtype == jnp.float32
    x, state, info = sampler.sample(model, state, 8, n_discard=1)
    assert x.dtype == jnp.int8
    assert state.log_prob.dtype == info.log_prob.dtype == info.acceptance.dtype == jnp.float32
    np.testing.assert_allclose(info.log_prob, 2 * np.asarray(model(x)), rtol=1e-5)
    # positions in the real dtype of the parameters, for a DeepSet in a periodic box
    box = hilbert.Particles(3, (2.0,), pbc=True)
    deepset = models.DeepSetRelDistance(
        box, 2, 2, 4, 4, param_dtype=jnp.float32, key=jax.random.key(1)
    )
    sampler = mcmc.MetropolisGaussian(box, sigma=0.3, n_chains=4)
    state = sampler.init(deepset, jax.random.key(2))
    assert state.x.dtype == jnp.float32 and state.log_prob.dtype == jnp.float32
    x, state, info = sampler.sample(deepset, state, 8, n_discard=1)
    assert x.dtype == jnp.float32 and info.log_prob.dtype == jnp.float32
    assert np.all((np.asarray(x) >= 0) & (np.asarray(x) < 2.0))


def test_complex_log_psi_in_a_closure():
    # a closure (no hilbert attribute, no array leaves) with a complex log psi: the chains
    # follow p Re log psi, the phase does not matter
    rbm = _rbm(SPIN6, seed=19)
    phases = jnp.linspace(0.0, 3.0, 6)

    def log_psi(x):
        return jax.lax.complex(rbm(x), x.astype(jnp.float64) @ phases)

    sampler = mcmc.MetropolisLocal(SPIN6, n_chains=4)
    state = sampler.init(log_psi, jax.random.key(0))
    x, state, info = sampler.sample(log_psi, state, 8, n_discard=1)
    assert info.log_prob.dtype == jnp.float64
    np.testing.assert_allclose(info.log_prob, 2 * np.asarray(rbm(x)), rtol=1e-12)


# -- bad input -------------------------------------------------------------------------------------


def test_bad_input():
    model = _rbm(SPIN6, seed=23)
    with pytest.raises(ValueError, match="edges"):
        mcmc.MetropolisExchange(SPIN6)  # neither lattice nor edges
    with pytest.raises(ValueError, match="edges"):
        mcmc.MetropolisExchange(SPIN6, lattice=lattice.Chain(6), edges=[(0, 1)])
    with pytest.raises(ValueError, match="lattice has 8 sites"):
        mcmc.MetropolisExchange(SPIN6, lattice=CHAIN8)
    with pytest.raises(ValueError, match="edges refer to site 6"):
        mcmc.MetropolisExchange(SPIN6, edges=[(0, 6)])
    with pytest.raises(ValueError, match="edges must join two different sites"):
        mcmc.MetropolisExchange(SPIN6, edges=[(1, 1)])
    with pytest.raises(ValueError, match="edges must be a non-empty"):
        mcmc.MetropolisExchange(SPIN6, edges=np.zeros((0, 2), int))
    with pytest.raises(ValueError, match="d_max"):
        mcmc.MetropolisExchange(SPIN6, lattice=lattice.Chain(6), d_max=0)
    with pytest.raises(TypeError, match="lattice must be an nqzoo lattice"):
        mcmc.MetropolisExchange(SPIN6, lattice=nk.graph.Chain(6))
    for name, kwargs in [
        ("n_chains", {"n_chains": 0}),
        ("sweep_size", {"sweep_size": -1}),
        ("machine_pow", {"machine_pow": 0}),
    ]:
        with pytest.raises(ValueError, match=name):
            mcmc.MetropolisLocal(SPIN6, **kwargs)
    box = hilbert.Particles(2, (1.0,))
    with pytest.raises(TypeError, match="hilbert"):
        mcmc.MetropolisLocal(box)
    with pytest.raises(TypeError, match="hilbert"):
        mcmc.MetropolisGaussian(SPIN6)
    with pytest.raises(TypeError, match="hilbert"):
        mcmc.MetropolisExchange(box, edges=[(0, 1)])
    with pytest.raises(ValueError, match="sigma"):
        mcmc.MetropolisGaussian(box, sigma=0.0)
    with pytest.raises(ValueError, match="constrained space"):
        mcmc.MetropolisLocal(SPIN8_SZ0)
    with pytest.raises(TypeError, match="hilbert_from_netket"):
        mcmc.MetropolisLocal(nk.hilbert.Spin(0.5, 6))
    with pytest.raises(TypeError, match="rule must be"):
        mcmc.MetropolisSampler(SPIN6, "local")

    sampler = mcmc.MetropolisLocal(SPIN6, n_chains=4)
    state = sampler.init(model, jax.random.key(0))
    with pytest.raises(ValueError, match="n_samples must be a multiple of n_chains=4"):
        sampler.sample(model, state, 10)
    with pytest.raises(ValueError, match="n_samples"):
        sampler.sample(model, state, 0)
    with pytest.raises(ValueError, match="n_discard"):
        sampler.sample(model, state, 8, n_discard=-1)
    other = _rbm(hilbert.Spin(0.5, 6, total_sz=0), seed=23)
    with pytest.raises(ValueError, match="model is defined on"):
        sampler.init(other, jax.random.key(0))
    with pytest.raises(ValueError, match="model is defined on"):
        sampler.sample(other, state, 8)
    with pytest.raises(TypeError, match="model"):  # the type check names the parameter
        sampler.sample("rbm", state, 8)
    small = mcmc.MetropolisLocal(SPIN6, n_chains=2)
    with pytest.raises(TypeError, match="state must be the ChainState"):
        small.sample(model, state, 8)
    with pytest.raises(ValueError, match="values must have a leading sample axis"):
        sampler.by_chain(np.ones(6))
    with pytest.raises(ValueError, match="model must map"):
        sampler.init(lambda x: model(x)[..., None], jax.random.key(0))
