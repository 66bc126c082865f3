"""nqzoo.interop.netket: one converter table, strict conversion from NetKet, Hilbert spaces and
activations mapped the same way for every model family."""

import importlib.util

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz

from .helpers import netket_promotion


nk = pytest.importorskip("netket")
interop = pytest.importorskip("nqzoo.interop.netket")
from netket.models import equivariant  # noqa: E402

from nqzoo.interop.netket import from_netket, to_netket  # noqa: E402


BOX = nqz.hilbert.Particles(3, (5.0,))
NK_SPIN = nk.hilbert.Spin(0.5, 4)


def _arnn(name, **kwargs):
    return getattr(nk.models, name)(hilbert=NK_SPIN, layers=2, features=(3, 2), **kwargs)


# (id, NetKet module, input shape or input, a bias path, the flag that removes that bias).
# Hyperparameters are given as to_netket writes them back, so round trips give equal modules.
CASES = [
    ("RBM", nk.models.RBM(alpha=1), (1, 4), ("visible_bias",), "use_visible_bias"),
    ("RBM-complex", nk.models.RBM(param_dtype=complex), (1, 4), ("Dense", "bias"),
     "use_hidden_bias"),
    ("RBMModPhase", nk.models.RBMModPhase(alpha=1), (1, 4), ("Dense_1", "bias"),
     "use_hidden_bias"),
    ("RBMMultiVal", nk.models.RBMMultiVal(n_classes=3), jnp.zeros((1, 4), jnp.int8),
     ("RBM", "visible_bias"), "use_visible_bias"),
    ("MLP", nk.models.MLP(hidden_dims=(3,), use_output_bias=True), (1, 4),
     ("MLP_0", "Dense_1", "bias"), "use_output_bias"),
    ("DeepSetMLP", nk.models.DeepSetMLP(features_phi=(3,), features_rho=(2,)), (1, 3, 2),
     ("DeepSetMLP_0", "ds_rho", "Dense_1", "bias"), "use_bias"),
    ("DeepSetRelDistance",
     nk.models.DeepSetRelDistance(
         hilbert=interop.hilbert_to_netket(BOX), layers_phi=1, layers_rho=2,
         features_phi=(3,), features_rho=(2, 1), cusp_exponent=5,
     ),
     (1, 3), ("deepset", "DeepSetMLP_0", "ds_phi", "Dense_0", "bias"), "use_bias"),
    ("ARNNDense", _arnn("ARNNDense"), (1, 4), ("_layers_1", "bias"), "use_bias"),
    ("ARNNConv1D", _arnn("ARNNConv1D", kernel_size=2, kernel_dilation=1), (1, 4),
     ("_layers_0", "bias"), "use_bias"),
    ("ARNNConv2D", _arnn("ARNNConv2D", kernel_size=(2, 2), kernel_dilation=(1, 1)), (1, 4),
     ("_layers_1", "bias"), "use_bias"),
    ("FastARNNDense", _arnn("FastARNNDense", param_dtype=complex), (1, 4),
     ("_layers_0", "bias"), "use_bias"),
    ("FastARNNConv1D", _arnn("FastARNNConv1D", kernel_size=3, kernel_dilation=2), (1, 4),
     ("_layers_1", "bias"), "use_bias"),
    ("FastARNNConv2D", _arnn("FastARNNConv2D", kernel_size=(2, 2), kernel_dilation=(1, 1)),
     (1, 4), ("_layers_0", "bias"), "use_bias"),
]
IDS = [case[0] for case in CASES]
NETKET_OWN = [case for case in CASES if not case[0].startswith("Fast")]


def _params(module, x, key):
    """NetKet's parameters of `module` for inputs like `x` (a shape or an array), as a plain
    nested dict."""
    with netket_promotion():
        return _plain(module.init(key, _input(x))["params"])


_CASE_PARAMS = {}


def _case_params(name):
    """The NetKet parameters of the case `name`, initialised once for all the tests."""
    if name not in _CASE_PARAMS:
        _, module, x, _, _ = next(case for case in CASES if case[0] == name)
        _CASE_PARAMS[name] = _params(module, x, jax.random.key(len(_CASE_PARAMS)))
    return _CASE_PARAMS[name]


def _input(x):
    return jnp.zeros(x) if isinstance(x, tuple) else x


def _plain(tree):
    return {k: _plain(v) for k, v in tree.items()} if hasattr(tree, "items") else tree


def _edit(params, path, value=None, delete=False):
    """A copy of the nested dict `params` with the leaf at `path` replaced (or deleted)."""
    params = _plain(params)
    node = params
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return params


def _leaf(params, path):
    for key in path:
        params = params[key]
    return params


def _model(converted):
    """The model of `from_netket`'s result (fast models come with their state)."""
    return converted[0] if isinstance(converted, tuple) else converted


def _shown(path):
    return "params/" + "/".join(path)


# --- the table -------------------------------------------------------------------------------


def test_one_explicit_table_and_no_registration():
    assert importlib.util.find_spec("nqzoo.interop._registry") is None
    table = interop._CONVERTERS
    # the recurrent networks (round trips in test_rnn.py): NetKet keeps them in
    # netket.experimental.models and has no plain-cell network (nqzoo's RNN/FastRNN convert
    # to SimpleRNNNet/FastSimpleRNNNet built on NetKet's RNN layers)
    recurrent = {"LSTMNet", "GRUNet1D", "FastLSTMNet", "FastGRUNet1D"}
    # the symmetric and tensor-network models (round trips in test_symmetric.py, test_mps.py
    # and test_gcnn.py): NetKet's GCNN is a factory of two classes, both converting to GCNN
    renamed = {
        "SimpleRNNNet": "RNN",
        "FastSimpleRNNNet": "FastRNN",
        "GCNN_FFT": "GCNN",
        "GCNN_Irrep": "GCNN",
        "SymmExpSum": "Symmetrized",
    }
    homes = {
        "GCNN_FFT": equivariant,
        "GCNN_Irrep": equivariant,
        "MPSOpen": nk.models.tensor_networks,
        "MPSPeriodic": nk.models.tensor_networks,
        "SymmExpSum": nk.nn.blocks,
    }
    symmetric = set(homes) | {"Jastrow", "RBMSymm"}
    for name, (cls, from_fn, to_fn) in table.items():
        if name in recurrent:
            assert getattr(nk.experimental.models, name) is not None
        elif name not in ("SimpleRNNNet", "FastSimpleRNNNet"):
            assert getattr(homes.get(name, nk.models), name) is not None
        assert cls is getattr(nqz.models, renamed.get(name, name))
        assert callable(from_fn) and callable(to_fn)
    tested_here = set(table) - recurrent - symmetric - {"SimpleRNNNet", "FastSimpleRNNNet"}
    assert {case[0] for case in CASES} - {"RBM-complex"} == tested_here


@pytest.mark.parametrize("name,module,shape,bias,flag", CASES, ids=IDS)
def test_round_trip_is_exact(name, module, shape, bias, flag):
    params = _case_params(name)
    converted = from_netket(module, {"params": params})
    model = _model(converted)
    assert type(model).__name__ == name.split("-")[0]
    if name.startswith("Fast"):
        assert isinstance(converted[1], eqx.nn.State)
    back, variables = to_netket(model)
    assert back == module
    assert jax.tree.structure(variables["params"]) == jax.tree.structure(params)
    jax.tree.map(np.testing.assert_array_equal, variables["params"], params)
    assert bool(eqx.tree_equal(_model(from_netket(back, variables)), model))


def test_unknown_models_and_bad_variables():
    with pytest.raises(TypeError, match="no nqzoo model for NetKet's LogStateVector.*supported"):
        from_netket(nk.models.LogStateVector(nk.hilbert.Spin(0.5, 2)), {"params": {}})
    with pytest.raises(TypeError, match="to_netket does not know str"):
        to_netket("RBM")
    with pytest.raises(TypeError, match="variables must be a dict"):
        from_netket(nk.models.RBM(), [1, 2])


# --- strict conversion -----------------------------------------------------------------------


def _refused(module, params, *fragments):
    with pytest.raises(ValueError) as info:
        from_netket(module, {"params": params})
    message = str(info.value)
    assert "With these hyperparameters the module has exactly the parameters" in message
    for fragment in fragments:
        assert fragment in message
    return message


def _netket_raises(name, module, params, shape):
    """NetKet's own models refuse the same variables (Fast* models are checked through the
    slow twins, whose parameters are the same)."""
    if not name.startswith("Fast"):
        with netket_promotion(), pytest.raises(Exception, match="parameter"):
            module.apply({"params": params}, _input(shape))


@pytest.mark.parametrize("name,module,shape,bias,flag", CASES, ids=IDS)
def test_missing_parameter(name, module, shape, bias, flag):
    params = _edit(_case_params(name), bias, delete=True)
    message = _refused(module, params, f"missing parameter {_shown(bias)}")
    assert f"{_shown(bias)}: " in message  # listed among the expected parameters
    _netket_raises(name, module, params, shape)


@pytest.mark.parametrize("name,module,shape,bias,flag", CASES, ids=IDS)
def test_unexpected_parameter(name, module, shape, bias, flag):
    params = _case_params(name)
    extra = (*bias[:-1], "extra_bias")
    top = _edit(params, ("scale",), jnp.ones(1))
    nested = _edit(params, extra, _leaf(params, bias))
    _refused(module, top, "unexpected parameter params/scale")
    message = _refused(module, nested, f"unexpected parameter {_shown(extra)}")
    assert "missing" not in message
    # (NetKet ignores parameters its module does not use: Flax does not check for extras.)


@pytest.mark.parametrize("name,module,shape,bias,flag", CASES, ids=IDS)
def test_flag_contradicting_parameters(name, module, shape, bias, flag):
    params = _case_params(name)
    assert getattr(module, flag) is True
    without = module.clone(**{flag: False})
    message = _refused(without, params, f"unexpected parameter {_shown(bias)}", f"{flag}=False")
    assert f"{_shown(bias)}: " not in message  # the module expects no such parameter
    # and the reverse: the flag on, the bias deleted
    _refused(module, _edit(params, bias, delete=True), f"missing parameter {_shown(bias)}")


@pytest.mark.parametrize("name,module,shape,bias,flag", CASES, ids=IDS)
def test_wrong_shape(name, module, shape, bias, flag):
    params = _case_params(name)
    good = _leaf(params, bias)
    bad = jnp.zeros((good.shape[0] + 1, *good.shape[1:]), good.dtype)
    dtype = good.dtype.name
    params = _edit(params, bias, bad)
    _refused(
        module,
        params,
        f"{_shown(bias)} is {dtype} {bad.shape} but the module expects {dtype} {good.shape}",
    )
    _netket_raises(name, module, params, shape)


@pytest.mark.parametrize("name,module,shape,bias,flag", CASES, ids=IDS)
def test_wrong_dtype(name, module, shape, bias, flag):
    params = _case_params(name)
    good = _leaf(params, bias)
    wrong = jnp.float32 if jnp.iscomplexobj(good) else jnp.complex128
    params = _edit(params, bias, good.real.astype(wrong))
    _refused(
        module,
        params,
        f"{_shown(bias)} is {jnp.dtype(wrong).name} {good.shape} but the module expects "
        f"{good.dtype.name} {good.shape}",
        f"param_dtype={good.dtype.name}",
    )


def test_missing_first_kernel_is_named(getkey):
    module = nk.models.MLP(hidden_dims=(3,))
    params = _edit(_params(module, (1, 4), getkey()), ("MLP_0", "Dense_0"), delete=True)
    with pytest.raises(ValueError, match="missing parameter params/MLP_0/Dense_0/kernel"):
        from_netket(module, {"params": params})


def test_wrong_number_of_layers(getkey):
    deep = nk.models.MLP(hidden_dims=(3, 3))
    params = _params(deep, (1, 4), getkey())
    _refused(nk.models.MLP(hidden_dims=(3,)), params, "unexpected parameter params/MLP_0/Dense_2")


def test_gradients_convert_like_parameters(getkey):
    module = nk.models.RBM(alpha=1, param_dtype=complex)
    x = jnp.ones((3, 4))
    params = _params(module, (1, 4), getkey())
    with netket_promotion():
        grads = jax.grad(lambda p: module.apply({"params": p}, x).real.sum())(params)
    model = from_netket(module, {"params": grads})
    np.testing.assert_array_equal(model.visible_bias, grads["visible_bias"])


# --- Hilbert spaces --------------------------------------------------------------------------


def test_netket_hilbert_is_converted(getkey):
    rbm = nk.models.RBM(alpha=1)
    params = _params(rbm, (1, 4), getkey())
    model = from_netket(rbm, {"params": params}, hilbert=nk.hilbert.Spin(1.0, 4))
    assert model.hilbert == nqz.hilbert.Spin(1, 4)
    multival = nk.models.RBMMultiVal(n_classes=3)
    params = _params(multival, jnp.zeros((1, 4), jnp.int8), getkey())
    model = from_netket(multival, {"params": params}, hilbert=nk.hilbert.Fock(2, 4))
    assert model.hilbert == nqz.hilbert.Fock(2, 4)
    with pytest.raises(ValueError, match="act on 4 sites.*size 5"):
        from_netket(rbm, _params(rbm, (1, 4), getkey()), hilbert=nk.hilbert.Spin(0.5, 5))


class _EvenUpSpins(nk.hilbert.constraint.DiscreteHilbertConstraint):
    def __call__(self, x):
        return jnp.sum(x > 0, axis=-1) % 2 == 0

    def __hash__(self):
        return hash(type(self))

    def __eq__(self, other):
        return type(other) is type(self)


def test_constrained_spaces():
    constrained = nk.hilbert.Spin(0.5, 4, total_sz=0)
    assert interop.hilbert_from_netket(constrained) == nqz.hilbert.Spin(0.5, 4, total_sz=0)
    other = nk.hilbert.Spin(0.5, 4, constraint=_EvenUpSpins())
    with pytest.raises(ValueError, match="constraint other than total_sz"):
        interop.hilbert_from_netket(other)
    fock = nk.hilbert.Fock(2, 4, n_particles=3)
    assert interop.hilbert_from_netket(fock) == nqz.hilbert.Fock(2, 4, n_particles=3)
    with pytest.raises(ValueError, match="constraint other than n_particles"):
        interop.hilbert_from_netket(nk.hilbert.Fock(2, 4, constraint=_EvenUpSpins()))


@pytest.mark.parametrize("name", ["ARNNDense", "FastLSTMNet"])
def test_constrained_autoregressive_models_are_not_converted(name, getkey):
    # NetKet's autoregressive models do not mask their conditionals: a converted module
    # would be another wavefunction, so to_netket refuses instead.
    hi = nqz.hilbert.Spin(0.5, 4, total_sz=0)
    cls = getattr(nqz.models, name)
    kwargs = {"layers": 1, "features": 2, "key": getkey()}
    model = cls(hi, **kwargs) if not name.startswith("Fast") else (
        eqx.nn.make_with_state(cls)(hi, **kwargs)[0]
    )
    with pytest.raises(ValueError, match="constrained space"):
        to_netket(model)
    free = cls(nqz.hilbert.Spin(0.5, 4), **kwargs) if not name.startswith("Fast") else (
        eqx.nn.make_with_state(cls)(nqz.hilbert.Spin(0.5, 4), **kwargs)[0]
    )
    to_netket(free)  # the same model on the unconstrained space converts


def test_recorded_hilbert_must_agree(getkey):
    module = _arnn("ARNNDense")
    variables = {"params": _params(module, (1, 4), getkey())}
    for hilbert in (None, NK_SPIN, nqz.hilbert.Spin(0.5, 4)):
        model = from_netket(module, variables, hilbert=hilbert)
        assert model.hilbert == nqz.hilbert.Spin(0.5, 4)
    with pytest.raises(ValueError, match="differs from the space NetKet's ARNNDense records"):
        from_netket(module, variables, hilbert=nqz.hilbert.Qubit(4))
    with pytest.raises(TypeError, match="hilbert must be an nqzoo or a NetKet Hilbert space"):
        from_netket(module, variables, hilbert="spin")


# --- activations -----------------------------------------------------------------------------

ACTIVATIONS = [
    ("RBM", lambda m: m.activation, nqz.nn.log_cosh),
    ("RBMModPhase", lambda m: m.activation, nqz.nn.log_cosh),
    ("RBMMultiVal", lambda m: m.rbm.activation, nqz.nn.log_cosh),
    ("MLP", lambda m: m.hidden_activations, nqz.nn.gelu),
    ("DeepSetMLP", lambda m: m.hidden_activation, nqz.nn.gelu),
    ("DeepSetRelDistance", lambda m: m.activation, nqz.nn.gelu),
    ("ARNNConv1D", lambda m: m.activation, nqz.nn.reim_selu),
    ("FastARNNDense", lambda m: m.to_slow().activation, nqz.nn.reim_selu),
]


@pytest.mark.parametrize("name,activation,expected", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activations_map_to_nqzoo_functions(name, activation, expected):
    _, module, shape, _, _ = next(case for case in CASES if case[0] == name)
    model = _model(from_netket(module, {"params": _case_params(name)}))
    assert activation(model) is expected
    assert to_netket(model)[0] == module  # and back to NetKet's own function


def test_activation_tuples_and_unknown_functions(getkey):
    log_cosh = nk.nn.activation.log_cosh
    module = nk.models.MLP(hidden_dims=(3, 3), hidden_activations=(log_cosh, jnp.tanh))
    model = from_netket(module, {"params": _params(module, (1, 4), getkey())})
    assert model.hidden_activations == (nqz.nn.log_cosh, jnp.tanh)
    assert to_netket(model)[0].hidden_activations == (log_cosh, jnp.tanh)
