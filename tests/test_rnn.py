"""Recurrent networks: NetKet parity (log psi, conditionals, gradients), fast == slow,
normalisation, conversion round trips, orderings, sampling, dtypes, shapes, bad input."""

import functools

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
from netket.experimental.nn.rnn.ordering import ensure_prev_neighbors, get_snake_inv_reorder_idx

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.interop.netket import from_netket, to_netket

from .helpers import max_rel_err, netket_promotion, randomize, tree_allclose


NKX = nk.experimental.models

HILBERTS = {
    "spin_half": (lambda n: nqz.hilbert.Spin(0.5, n), lambda n: nk.hilbert.Spin(0.5, n)),
    "spin_one": (lambda n: nqz.hilbert.Spin(1, n), lambda n: nk.hilbert.Spin(1.0, n)),
    "fock": (lambda n: nqz.hilbert.Fock(2, n), lambda n: nk.hilbert.Fock(2, n)),
}

# NetKet graphs (None: a chain of 6 sites in site order, NetKet's 1D code path)
GRAPHS = {
    "chain": None,
    "chain_graph": lambda: nk.graph.Chain(6, pbc=True),  # explicit order and prev_neighbors
    "snake3_obc": lambda: nk.graph.Square(3, pbc=False),  # one previous neighbour
    "snake3_pbc": lambda: nk.graph.Square(3, pbc=True),
    "snake4_obc": lambda: nk.graph.Square(4, pbc=False),  # two previous neighbours
    "snake4_pbc": lambda: nk.graph.Square(4, pbc=True),
}

# A covering subset of {cell} x {ordering} x {hilbert} x {dtype} x {layers} x {machine_pow}
# (gradients, the costliest compilation, in half of the cases: every cell, 1D and 2D, real
# and complex)
CASES = [
    # network, graph, hilbert, dtype, layers, machine_pow, gradients
    ("LSTMNet", "chain", "spin_half", jnp.float64, 3, 2, False),
    ("LSTMNet", "snake3_pbc", "spin_one", jnp.complex128, 2, 1, True),
    ("GRUNet1D", "chain", "fock", jnp.complex128, 2, 1, True),
    ("GRUNet1D", "snake3_obc", "spin_half", jnp.float64, 3, 2, False),
    ("SimpleRNNNet", "chain_graph", "spin_one", jnp.complex128, 1, 2, False),
    ("SimpleRNNNet", "snake4_obc", "spin_half", jnp.float64, 2, 1, True),
]

NQZ_NAMES = {
    "LSTMNet": ("LSTMNet", "FastLSTMNet"),
    "GRUNet1D": ("GRUNet1D", "FastGRUNet1D"),
    "SimpleRNNNet": ("RNN", "FastRNN"),
}


def _case_id(case):
    net, graph, hil, dtype, layers, mp, grads = case
    return f"{net}-{graph}-{hil}-{jnp.dtype(dtype).name}-L{layers}-mp{mp}" + "-grad" * grads


def _netket_classes(name):
    if hasattr(NKX, name):
        return getattr(NKX, name), getattr(NKX, f"Fast{name}")
    from nqzoo.interop._rnn import netket_simple_rnn

    classes = netket_simple_rnn()
    return classes[name], classes[f"Fast{name}"]


def _grad(model, x):
    return eqx.filter_grad(lambda m: jnp.sum(m(x).real))(model)


@eqx.filter_jit
def _evaluate(slow, x, grads):
    """The conditionals of `x` with one and with two batch axes and, if `grads`, the gradient
    of `sum(Re log psi(x))`, in one compilation."""
    grad = _grad(slow, x) if grads else None
    batched = slow.conditionals(x.reshape(2, -1, x.shape[-1])).reshape(*x.shape, -1)
    return slow.conditionals(x), batched, grad


@functools.partial(jax.jit, static_argnums=(0,))
def _netket_grad(module, variables, x):
    """The gradient of NetKet's `sum(Re log psi(x))`."""
    return jax.grad(lambda p: jnp.sum(module.apply({"params": p}, x).real))(variables["params"])


def _random_params(module, x, key):
    """Random parameters (not init values) in the tree NetKet's `init` makes (traced with
    `jax.eval_shape`, not compiled), drawn at once by `tests.helpers.randomize`."""
    shapes = jax.eval_shape(module.init, key, x)["params"]
    zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    flat, unravel = jax.flatten_util.ravel_pytree(zeros)
    return unravel(randomize(flat, key, scale=0.6))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_netket_parity_fast_slow_normalisation_round_trip(case, getkey):
    net, graph_name, hil, dtype, layers, mp, grads = case
    graph = GRAPHS[graph_name] and GRAPHS[graph_name]()
    n = 6 if graph is None else graph.n_nodes
    hi, nk_hi = HILBERTS[hil][0](n), HILBERTS[hil][1](n)
    nk_cls, nk_fast_cls = _netket_classes(net)
    kwargs = dict(
        hilbert=nk_hi, layers=layers, features=3, graph=graph, param_dtype=dtype, machine_pow=mp
    )
    nk_slow, nk_fast = nk_cls(**kwargs), nk_fast_cls(**kwargs)
    x = hi.random_state(getkey(), 8)
    with netket_promotion():
        variables = {"params": _random_params(nk_slow, x, getkey())}
        nk_grad = _netket_grad(nk_slow, variables, x) if grads else None

    slow = from_netket(nk_slow, variables)
    fast, state = from_netket(nk_fast, variables)
    slow_name, fast_name = NQZ_NAMES[net]
    assert type(slow).__name__ == slow_name and type(fast).__name__ == fast_name
    assert tree_allclose(fast.to_slow(), slow, rtol=0)
    if graph is not None:
        np.testing.assert_array_equal(slow.reorder_idx, np.asarray(nk_slow.reorder_idx))
        np.testing.assert_array_equal(slow.prev_neighbors, np.asarray(nk_slow.prev_neighbors))
    # log psi (amplitudes, phases mod 2 pi) and conditionals: NetKet's, to 1e-12
    nqt.assert_netket_parity(slow, nk_slow, variables, x=x, rtol=1e-12)
    cond, batched, grad = _evaluate(slow, x, grads)
    assert max_rel_err(batched, cond) < 1e-14  # the same over two batch axes
    # gradients: NetKet's, to 1e-12
    if grads:  # the gradient as a model, read out in NetKet's layout
        grad = to_netket(grad)[1]["params"]
        assert jax.tree.structure(grad) == jax.tree.structure(nk_grad)
        for g, ref in zip(jax.tree.leaves(grad), jax.tree.leaves(nk_grad)):
            assert max_rel_err(g, ref) < 1e-12

    # fast steps along the model's order == slow conditionals (the same step function)
    nqt.assert_fast_matches_slow(fast, state, x, slow=slow, atol=1e-14)

    # sum_x |psi(x)|^mp = 1 over the whole space
    nqt.assert_normalized(slow, rtol=1e-10)

    # and back to NetKet: the same module (ordering as arrays) and parameters, bit for bit
    for model, nk_model in ((slow, nk_slow), (fast, nk_fast)):
        nk_back, variables_back = to_netket(model)
        assert type(nk_back) is type(nk_model)
        assert nk_back.clone(features=nk_model.features, graph=nk_model.graph) == nk_model
        assert tree_allclose(variables_back, variables, rtol=0)
        assert tree_allclose(from_netket(nk_back, variables_back), from_netket(nk_model, variables))


# ------------------------------------------------------------------------------------------
# Orderings
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nk_graph, lattice",
    [
        (nk.graph.Square(4, pbc=False), nqz.lattice.Square(4, pbc=False)),
        (nk.graph.Square(4, pbc=True), nqz.lattice.Square(4)),
        (nk.graph.Grid([3, 5], pbc=False), nqz.lattice.Grid((3, 5), pbc=False)),
        (nk.graph.Grid([4, 3], pbc=True), nqz.lattice.Grid((4, 3))),
        (nk.graph.Square(10, pbc=False), nqz.lattice.Square(10, pbc=False)),
        (nk.graph.Chain(7), nqz.lattice.Chain(7)),
    ],
)
def test_orderings_equal_netkets(nk_graph, lattice):
    reorder, inv, prev = map(np.asarray, ensure_prev_neighbors(graph=nk_graph))
    for graph in (nk_graph, lattice):
        ordering = nqz.nn.graph_ordering(graph)
        np.testing.assert_array_equal(ordering["reorder_idx"], reorder)
        np.testing.assert_array_equal(ordering["inv_reorder_idx"], inv)
        np.testing.assert_array_equal(ordering["prev_neighbors"], prev)
        if lattice.n_dim == 2:
            snake = nqz.nn.snake_ordering(graph)
            np.testing.assert_array_equal(
                snake["reorder_idx"], np.asarray(get_snake_inv_reorder_idx(nk_graph))
            )
            np.testing.assert_array_equal(snake["reorder_idx"], lattice.snake_order())
            np.testing.assert_array_equal(snake["prev_neighbors"], prev)


ZEROS = dict(kernel_init=nqz.nn.initializers.zeros)  # no random draws to compile


def test_model_orderings_reorder_and_init(getkey):
    hi = nqz.hilbert.Spin(0.5, 16)
    square = nqz.lattice.Square(4, pbc=False)
    ordering = nqz.nn.snake_ordering(square)
    inv = ordering["inv_reorder_idx"]
    models = [
        nqz.models.LSTMNet(hi, 2, 3, graph=square, **ZEROS, key=getkey()),
        nqz.models.LSTMNet(hi, 2, 3, graph=nk.graph.Square(4, pbc=False), **ZEROS, key=getkey()),
        nqz.models.LSTMNet(hi, 2, 3, **ordering, **ZEROS, key=getkey()),
        nqz.models.LSTMNet(hi, 2, 3, inv_reorder_idx=inv, graph=square, **ZEROS, key=getkey()),
    ]
    for model in models:
        assert model.reorder_idx == tuple(ordering["reorder_idx"])
        assert model.prev_neighbors == tuple(map(tuple, ordering["prev_neighbors"]))
        assert model.layers[0].kernel.shape == (1 + 2 * 3, 4 * 3)
    # the fast state keeps only the memories still to be read (plus a zero row)
    assert models[0].tables.n_slots == 5
    assert nqz.models.LSTMNet(
        nqz.hilbert.Spin(0.5, 100), 1, 2, graph=nqz.lattice.Square(10), **ZEROS, key=getkey()
    ).tables.n_slots == 11
    x = jnp.arange(16)
    np.testing.assert_array_equal(models[0].reorder(x), ordering["reorder_idx"])
    np.testing.assert_array_equal(models[0].inverse_reorder(models[0].reorder(x)), x)
    # NetKet's initialisers: (semi-)orthogonal kernels (unitary when complex), zero biases
    build = eqx.filter_jit(nqz.models.GRUNet1D)  # one compilation of the initialisers
    chain = build(nqz.hilbert.Spin(0.5, 5), 2, 3, param_dtype=jnp.complex128, key=getkey())
    assert chain.reorder_idx is None and chain.prev_neighbors is None
    np.testing.assert_array_equal(chain.reorder(jnp.arange(5)), jnp.arange(5))
    for cell in chain.layers:
        for kernel in (cell.rz_kernel, cell.n_kernel):
            k = kernel if kernel.shape[0] >= kernel.shape[1] else kernel.T
            np.testing.assert_allclose(k.conj().T @ k, np.eye(k.shape[1]), atol=1e-12)
        assert not np.any(cell.rz_bias) and not np.any(cell.n_bias)


# ------------------------------------------------------------------------------------------
# Sampling, shapes, dtypes
# ------------------------------------------------------------------------------------------


def _random_model(cls, *args, seed=0, **kwargs):
    """A model with random parameters (not init values) and its state: built with zero
    kernels (nothing to compile), then every parameter drawn at once."""
    model, state = eqx.nn.make_with_state(cls)(*args, key=jax.random.key(seed), **ZEROS, **kwargs)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    params = unravel(randomize(flat, jax.random.key(seed + 1), scale=0.8))
    return eqx.combine(params, static), state


N_SAMPLES = 8192


@pytest.mark.parametrize(
    "cls, hilbert, kwargs, dtype, mp, twin",
    [
        # a snake on a 2x3 lattice: nqz.sample visits model.reorder(arange(N))
        (
            nqz.models.FastLSTMNet,
            nqz.hilbert.Spin(0.5, 6),
            dict(graph=nqz.lattice.Grid((2, 3), pbc=False)),
            jnp.float64,
            2,
            True,
        ),
        # a snake on a constrained space: the constraint counts sites in the snake's order
        (
            nqz.models.FastRNN,
            nqz.hilbert.Spin(0.5, 9, total_sz=0.5),
            dict(graph=nqz.lattice.Square(3)),
            jnp.float64,
            2,
            False,
        ),
    ],
)
def test_sampling(cls, hilbert, kwargs, dtype, mp, twin):
    """nqz.sample of a fast recurrent network (one step per site from the state): samples
    in the space, from |psi|^p (chi-squared), with the model's log-probabilities; the slow
    twin (recomputing conditionals) draws the same samples."""
    fast, state = _random_model(cls, hilbert, 2, 4, param_dtype=dtype, machine_pow=mp, **kwargs)
    key = jax.random.key(7)
    nqt.assert_normalized(fast, rtol=1e-10)  # over the (constrained) space
    # shape and dtype, every sample a state, chi-squared p-value >= 1e-4, log_prob to 1e-12
    samples, _ = nqt.assert_exact_sampling(
        fast, key=key, state=state, n_samples=N_SAMPLES, alpha=1e-4, rtol=1e-12
    )
    if twin:
        np.testing.assert_array_equal(nqz.sample(fast.to_slow(), N_SAMPLES, key=key), samples)


def test_batch_axes_and_wrong_width():
    """Shapes (values over batch axes are checked in the parity test)."""
    hi = nqz.hilbert.Spin(0.5, 9)
    model, _ = _random_model(nqz.models.LSTMNet, hi, 2, 3, graph=nqz.lattice.Square(3))
    x = hi.random_state(jax.random.key(0), (2, 3))
    assert jax.eval_shape(model, x).shape == (2, 3)
    assert jax.eval_shape(model, x[1, 2]).shape == ()
    assert jax.eval_shape(model.conditionals, x).shape == (2, 3, 9, 2)
    with pytest.raises(TypeError):
        model(jnp.ones((3, 8)))
    cell = model.layers[1]
    assert cell.n_neighbors == 2
    with pytest.raises(TypeError):
        cell(jnp.ones(3), jnp.zeros(2), jnp.zeros((1, 2)))  # 2 neighbours expected


@eqx.filter_jit
def _single_precision(slow, x):
    return slow(x), slow.conditionals(x), _grad(slow, x)


@pytest.mark.parametrize(
    "cls, kwargs, dtype",
    [
        (nqz.models.FastLSTMNet, dict(graph=nqz.lattice.Square(2)), jnp.float32),
        (nqz.models.FastGRUNet1D, {}, jnp.complex64),
    ],
)
def test_single_precision_stays_single(cls, kwargs, dtype):
    """With x64 on, float32/complex64 parameters give float32/complex64 parameters, states,
    log-amplitudes, conditionals (slow and fast), gradients and sampler log-probabilities."""
    real = jnp.finfo(dtype).dtype
    hi = nqz.hilbert.Spin(0.5, 4)
    fast, state = _random_model(cls, hi, 2, 3, param_dtype=dtype, **kwargs)
    params = jax.tree.leaves(eqx.filter(fast, eqx.is_inexact_array))
    assert {p.dtype for p in params} == {jnp.dtype(dtype)}
    assert {leaf.dtype for leaf in jax.tree.leaves(state)} == {jnp.dtype(dtype)}
    x = hi.random_state(jax.random.key(1), 5)
    log_psi, cond, grad = _single_precision(fast.to_slow(), x)
    step = jax.eval_shape(fast.conditional, x[0], 0, state)[0]  # traced, not compiled
    assert log_psi.dtype == dtype and cond.dtype == step.dtype == real
    assert {g.dtype for g in jax.tree.leaves(grad)} == {jnp.dtype(dtype)}
    nqt.assert_fast_matches_slow(fast, state, x, slow=fast.to_slow(), atol=1e-6)
    _, log_prob = nqz.sample(fast, 7, key=jax.random.key(2), state=state, return_log_prob=True)
    assert log_prob.dtype == real


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------

SPIN9 = nqz.hilbert.Spin(0.5, 9)
SNAKE3 = nqz.nn.snake_ordering(nqz.lattice.Square(3, pbc=False))


def _later(prev):
    prev = np.array(prev)
    prev[0, 0] = 4  # site 0 (step 0) reading site 4 (step 4)
    return prev


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        # prev_neighbors of the wrong shape
        (nqz.models.LSTMNet, dict(**{**SNAKE3, "prev_neighbors": np.zeros((8, 1))}), "prev_"),
        (
            nqz.models.FastLSTMNet,
            dict(**{**SNAKE3, "prev_neighbors": np.full((8, 2), -1)}),
            r"shape \(N=9",
        ),
        (nqz.models.LSTMNet, dict(**{**SNAKE3, "prev_neighbors": np.arange(9)}), "shape"),
        # pointing to later sites, out of range, repeated
        (nqz.models.GRUNet1D, {**SNAKE3, "prev_neighbors": _later(SNAKE3["prev_neighbors"])}, "not before"),  # noqa: E501
        (nqz.models.LSTMNet, {**SNAKE3, "prev_neighbors": np.full((9, 1), 9)}, "neither a site"),
        (nqz.models.LSTMNet, {**SNAKE3, "prev_neighbors": np.zeros((9, 2), int)}, "twice"),
        # a graph or lattice whose size differs from the Hilbert space
        (nqz.models.LSTMNet, dict(graph=nqz.lattice.Square(4)), "N=9"),
        (nqz.models.FastGRUNet1D, dict(graph=nk.graph.Chain(8)), "8 sites"),
        # orderings that do not fit together
        (nqz.models.LSTMNet, dict(reorder_idx=[0, 1, 2, 3, 4, 5, 6, 7, 7]), "permutation"),
        (
            nqz.models.LSTMNet,
            dict(reorder_idx=np.arange(9), inv_reorder_idx=SNAKE3["inv_reorder_idx"]),
            "not the inverse",
        ),
        (nqz.models.LSTMNet, dict(prev_neighbors=SNAKE3["prev_neighbors"]), "without the path"),
        (nqz.models.LSTMNet, dict(reorder_idx=SNAKE3["reorder_idx"]), "previous neighbours"),
        # a GRU on a 2D ordering with two previous neighbours
        (nqz.models.GRUNet1D, dict(graph=nqz.lattice.Square(3)), "one previous neighbour"),
        # widths
        (nqz.models.LSTMNet, dict(features=(3, 3)), "local_size=2"),
        (nqz.models.FastRNN, dict(layers=0), "layers"),
        (nqz.models.RNN, dict(machine_pow=0), "machine_pow"),
    ],
)
def test_bad_input(cls, kwargs, match, getkey):
    kwargs = {"layers": 2, "features": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        eqx.nn.make_with_state(cls)(SPIN9, key=getkey(), **kwargs)


@pytest.mark.parametrize(
    "graph", [nqz.lattice.Chain(9), nk.graph.Chain(9), nqz.lattice.Hypercube(2, 3)]
)
def test_2d_ordering_on_a_1d_lattice(graph):
    with pytest.raises(ValueError, match="two-dimensional"):
        nqz.nn.snake_ordering(graph)


def test_bad_types(getkey):
    with pytest.raises(TypeError, match="graph must be"):
        nqz.models.LSTMNet(SPIN9, 2, 3, graph=np.arange(9), key=getkey())
    with pytest.raises(TypeError, match="AbstractRNNCell"):
        nqz.models.RNN(SPIN9, 2, 3, cell=nqz.nn.MaskedDense1D, key=getkey())
    with pytest.raises(TypeError, match="hilbert_from_netket"):
        nqz.models.FastLSTMNet(nk.hilbert.Spin(0.5, 9), 2, 3, key=getkey())
    make = eqx.nn.make_with_state(nqz.models.FastGRUNet1D)
    model, state = make(SPIN9, 2, 3, **ZEROS, key=getkey())
    with pytest.raises(TypeError, match="make_with_state"):
        model.conditional(jnp.ones(9, jnp.int8), 0, None)


def test_conversion_strict_and_cells(getkey):
    nk_model = NKX.LSTMNet(hilbert=nk.hilbert.Spin(0.5, 4), layers=2, features=3)
    with netket_promotion():
        shapes = jax.eval_shape(nk_model.init, getkey(), jnp.ones((1, 4)))["params"]
    params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    params["_layers_1"]["cell"]["bias"] = np.zeros(7)
    with pytest.raises(ValueError, match="params/_layers_1/cell/bias"):
        from_netket(nk_model, {"params": params})
    # an RNN of LSTM cells is NetKet's LSTMNet; of any other cell, not convertible
    hi = nqz.hilbert.Spin(0.5, 4)
    rnn = nqz.models.RNN(hi, 2, 3, cell=nqz.nn.LSTMCell, **ZEROS, key=getkey())
    assert type(to_netket(rnn)[0]) is NKX.LSTMNet

    class Cell(nqz.nn.SimpleRNNCell):
        pass

    with pytest.raises(TypeError, match="Cell cells"):
        to_netket(nqz.models.RNN(hi, 2, 3, cell=Cell, **ZEROS, key=getkey()))
