"""`param_dtype` is honoured by every model and layer (issue 15, item 1).

Every public model of `nqzoo.models` and layer of `nqzoo.nn` is built with float32, float64,
complex64 and complex128 parameters with x64 on, and float64 and complex128 with x64 off
(they then mean float32 and complex64, as everywhere in JAX; float32 and complex64 requests
trace the same): its parameters, outputs, gradients, conditionals and sampler `log_prob` come
out in that dtype (a real model may return a complex log-amplitude of the same precision).
Dtypes are decided at trace time, so all of it runs under `eqx.filter_eval_shape`. An integer
`param_dtype` is refused at construction, naming `param_dtype`. The registry below must name
every public class: a model or layer added to the zoo without an entry here fails
`test_every_model_and_layer_is_swept`.
"""

import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz


SPIN4 = nqz.hilbert.Spin(0.5, 4)
FOCK = nqz.hilbert.Fock(2, 3)
BOX = nqz.hilbert.Particles(2, (1.0,))
CHAIN4 = nqz.lattice.Chain(4)
GROUP4 = CHAIN4.translation_group()
make = eqx.nn.make_with_state


def _configs(hilbert):
    return hilbert.all_states()[:3]


def _fast(cls, *args, **kwargs):
    return make(cls)(*args, **kwargs)[0]


# name -> (build(dtype, key) -> module, inputs(dtype) -> tuple of call arguments, real_only)
# `real_only`: complex parameters are refused by design (named in the docstring), which
# the sweep checks too.
MODELS = {
    "RBM": (lambda d, k: nqz.models.RBM(SPIN4, param_dtype=d, key=k), None, False),
    "RBMModPhase": (lambda d, k: nqz.models.RBMModPhase(SPIN4, param_dtype=d, key=k), None,
                    True),
    "RBMMultiVal": (lambda d, k: nqz.models.RBMMultiVal(FOCK, param_dtype=d, key=k), None,
                    False),
    "RBMSymm": (lambda d, k: nqz.models.RBMSymm(SPIN4, GROUP4, param_dtype=d, key=k), None,
                False),
    "Jastrow": (lambda d, k: nqz.models.Jastrow(SPIN4, param_dtype=d, key=k), None, False),
    "MLP": (lambda d, k: nqz.models.MLP(SPIN4, hidden_dims=(3,), param_dtype=d, key=k), None,
            False),
    "MPSOpen": (lambda d, k: nqz.models.MPSOpen(SPIN4, 2, param_dtype=d, key=k), None, False),
    "MPSPeriodic": (lambda d, k: nqz.models.MPSPeriodic(SPIN4, 2, param_dtype=d, key=k), None,
                    False),
    "GCNN": (lambda d, k: nqz.models.GCNN(SPIN4, GROUP4, layers=1, features=2,
                                          param_dtype=d, key=k), None, False),
    "Symmetrized": (lambda d, k: nqz.models.Symmetrized(
        nqz.models.RBM(SPIN4, param_dtype=d, key=k), GROUP4), None, False),
    "MarshallSign": (lambda d, k: nqz.models.MarshallSign(
        nqz.models.RBM(SPIN4, param_dtype=d, key=k), CHAIN4), None, False),
    "MarshallSignARNN": (lambda d, k: nqz.models.MarshallSignARNN(
        nqz.models.ARNNDense(SPIN4, 1, 2, param_dtype=d, key=k), CHAIN4), None, False),
    "SpinFlipSymmetricARNN": (lambda d, k: nqz.models.SpinFlipSymmetricARNN(
        nqz.models.ARNNDense(SPIN4, 1, 2, param_dtype=d, kernel_init=nqz.nn.initializers.zeros,
                             key=k)), None, False),
    "ViT": (lambda d, k: nqz.models.ViT(SPIN4, lattice=CHAIN4, patch_size=2, d_model=4,
                                        heads=2, layers=1, param_dtype=d, key=k), None, True),
    "ARNNDense": (lambda d, k: nqz.models.ARNNDense(SPIN4, 2, 2, param_dtype=d, key=k), None,
                  False),
    "ARNNConv1D": (lambda d, k: nqz.models.ARNNConv1D(SPIN4, 2, 2, 2, param_dtype=d, key=k),
                   None, False),
    "ARNNConv2D": (lambda d, k: nqz.models.ARNNConv2D(SPIN4, 2, 2, 2, lattice_shape=(2, 2),
                                                      param_dtype=d, key=k), None, False),
    "FastARNNDense": (lambda d, k: _fast(nqz.models.FastARNNDense, SPIN4, 2, 2,
                                         param_dtype=d, key=k), None, False),
    "FastARNNConv1D": (lambda d, k: _fast(nqz.models.FastARNNConv1D, SPIN4, 2, 2, 2,
                                          param_dtype=d, key=k), None, False),
    "FastARNNConv2D": (lambda d, k: _fast(nqz.models.FastARNNConv2D, SPIN4, 2, 2, 2,
                                          lattice_shape=(2, 2), param_dtype=d, key=k), None,
                       False),
    "RNN": (lambda d, k: nqz.models.RNN(SPIN4, 1, 2, param_dtype=d, key=k), None, False),
    "LSTMNet": (lambda d, k: nqz.models.LSTMNet(SPIN4, 1, 2, param_dtype=d, key=k), None,
                False),
    "GRUNet1D": (lambda d, k: nqz.models.GRUNet1D(SPIN4, 1, 2, param_dtype=d, key=k), None,
                 False),
    "FastRNN": (lambda d, k: _fast(nqz.models.FastRNN, SPIN4, 1, 2, param_dtype=d, key=k),
                None, False),
    "FastLSTMNet": (lambda d, k: _fast(nqz.models.FastLSTMNet, SPIN4, 1, 2, param_dtype=d,
                                       key=k), None, False),
    "FastGRUNet1D": (lambda d, k: _fast(nqz.models.FastGRUNet1D, SPIN4, 1, 2, param_dtype=d,
                                        key=k), None, False),
    "ARTransformer": (lambda d, k: nqz.models.ARTransformer(SPIN4, 1, 4, 2, mlp_ratio=1,
                                                            param_dtype=d, key=k), None, False),
    "FastARTransformer": (lambda d, k: _fast(nqz.models.FastARTransformer, SPIN4, 1, 4, 2,
                                             mlp_ratio=1, param_dtype=d, key=k), None, False),
    "DeepSetMLP": (lambda d, k: nqz.models.DeepSetMLP(1, 2, 2, param_dtype=d, key=k),
                   lambda r: (jnp.linspace(0.1, 0.9, 3, dtype=r).reshape(3, 1),), False),
    "DeepSetRelDistance": (lambda d, k: nqz.models.DeepSetRelDistance(
        BOX, 1, 1, 2, 2, param_dtype=d, key=k),
        lambda r: (jnp.array([[0.1, 0.6], [0.3, 0.4]], dtype=r),), False),
}

_x = lambda *shape: lambda r: (jnp.linspace(-1.0, 1.0, int(np.prod(shape)), dtype=r)  # noqa
                               .reshape(shape),)

LAYERS = {
    "MaskedDense1D": (lambda d, k: nqz.nn.MaskedDense1D(4, 1, 2, True, param_dtype=d, key=k),
                      _x(4, 1), False),
    "MaskedConv1D": (lambda d, k: nqz.nn.MaskedConv1D(1, 2, 2, param_dtype=d, key=k),
                     _x(4, 1), False),
    "MaskedConv2D": (lambda d, k: nqz.nn.MaskedConv2D(1, 2, (2, 2), param_dtype=d, key=k),
                     _x(2, 2, 1), False),
    "FastMaskedDense1D": (lambda d, k: _fast(nqz.nn.FastMaskedDense1D, nqz.nn.MaskedDense1D(
        4, 1, 2, True, param_dtype=d, key=k)), _x(4, 1), False),
    "FastMaskedConv1D": (lambda d, k: _fast(nqz.nn.FastMaskedConv1D, nqz.nn.MaskedConv1D(
        1, 2, 2, param_dtype=d, key=k)), _x(4, 1), False),
    "FastMaskedConv2D": (lambda d, k: _fast(nqz.nn.FastMaskedConv2D, nqz.nn.MaskedConv2D(
        1, 2, (2, 2), param_dtype=d, key=k), (2, 2)), _x(2, 2, 1), False),
    "SimpleRNNCell": (lambda d, k: nqz.nn.SimpleRNNCell(1, 2, param_dtype=d, key=k),
                      lambda r: (*_x(1)(r), *_x(2)(r), *_x(1, 2)(r)), False),
    "LSTMCell": (lambda d, k: nqz.nn.LSTMCell(1, 2, param_dtype=d, key=k),
                 lambda r: (*_x(1)(r), *_x(2)(r), *_x(1, 2)(r)), False),
    "GRU1DCell": (lambda d, k: nqz.nn.GRU1DCell(1, 2, param_dtype=d, key=k),
                  lambda r: (*_x(1)(r), *_x(2)(r), *_x(1, 2)(r)), False),
    "LayerNorm": (lambda d, k: nqz.nn.LayerNorm(4, param_dtype=d), _x(3, 4), False),
    "CausalSelfAttention": (lambda d, k: nqz.nn.CausalSelfAttention(4, 2, param_dtype=d,
                                                                    key=k), _x(3, 4), False),
    "FastCausalSelfAttention": (lambda d, k: _fast(nqz.nn.FastCausalSelfAttention,
                                                   nqz.nn.CausalSelfAttention(
                                                       4, 2, param_dtype=d, key=k), 3),
                                _x(3, 4), False),
    "TransformerBlock": (lambda d, k: nqz.nn.TransformerBlock(4, 2, 1, param_dtype=d, key=k),
                         _x(3, 4), False),
    "DenseSymm": (lambda d, k: nqz.nn.DenseSymm(GROUP4, 2, param_dtype=d, key=k), _x(2, 1, 4),
                  False),
    "DenseEquivariant": (lambda d, k: nqz.nn.DenseEquivariant(GROUP4, 2, 1, param_dtype=d,
                                                              key=k), _x(2, 1, 4), False),
    "FactoredAttention": (lambda d, k: nqz.nn.FactoredAttention(2, 4, 2, param_dtype=d, key=k),
                          _x(2, 4), True),
    "ViTEncoderBlock": (lambda d, k: nqz.nn.ViTEncoderBlock(2, 4, 2, 1, param_dtype=d, key=k),
                        _x(2, 4), True),
}

CASES = {**MODELS, **LAYERS}
DTYPES = [jnp.float32, jnp.float64, jnp.complex64, jnp.complex128]


def _public_classes(module):
    return {
        name
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and not name.startswith(("_", "Abstract"))
    }


def test_every_model_and_layer_is_swept():
    """A public model or layer missing from the registry fails here (add it to MODELS or
    LAYERS, with the smallest sizes that build it)."""
    public = _public_classes(nqz.models) | _public_classes(nqz.nn)
    assert public - set(CASES) == set(), "not swept over param_dtype"
    assert set(CASES) - public == set(), "swept but not public (renamed?)"


def _expected(dtype):
    """The dtype JAX gives for `dtype` under the current x64 setting."""
    return jnp.dtype(jax.dtypes.canonicalize_dtype(dtype))


# built outside the trace: the wrapper reads its model's (integer) orders with NumPy
EAGER_BUILD = {"SpinFlipSymmetricARNN"}


def _is_inexact(leaf):
    return isinstance(leaf, jax.ShapeDtypeStruct | jax.Array) and jnp.issubdtype(
        leaf.dtype, jnp.inexact
    )


def _check(name, dtypes=DTYPES):
    """Every dtype of DTYPES under the current x64 setting. Dtypes are decided at trace time,
    so the model is built, called and differentiated under `eqx.filter_eval_shape`: nothing
    is compiled or run (an eager sweep compiles every primitive of every initialiser)."""
    build, inputs, real_only = CASES[name]
    key = jax.random.key(0)
    for dtype in dtypes:
        if real_only and jnp.issubdtype(dtype, jnp.complexfloating):
            with pytest.raises(ValueError, match=r"param_dtype must be a real floating dtype"):
                build(dtype, key)
            continue
        want = _expected(dtype)
        real = jnp.finfo(want).dtype

        def loss(model, args):
            out = model(*args)
            return sum(jnp.sum(leaf.real) for leaf in jax.tree.leaves(out)), out

        def run(key, model=None):
            if model is None:
                model = build(dtype, key)
            # a layer's input is its stream, in the parameters' dtype; a model's is real
            args = (
                (_configs(model.hilbert),) if inputs is None
                else inputs(want if name in LAYERS else real)
            )
            (_, out), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model, args)
            extra = ()
            if isinstance(model, nqz.models.AbstractARNN):
                extra = [model.conditionals(args[0])]
                if not isinstance(model, nqz.models.AbstractFastARNN | nqz.models.AbstractFastRNN):
                    # (a fast model samples with its state, as in its own tests)
                    extra.append(nqz.sample(model, 2, key=key, return_log_prob=True)[1])
            return eqx.filter(model, eqx.is_inexact_array), out, grads, extra

        if name in EAGER_BUILD:
            params, out, grads, conditionals = eqx.filter_eval_shape(run, key, build(dtype, key))
        else:
            params, out, grads, conditionals = eqx.filter_eval_shape(run, key)
        params = [p for p in jax.tree.leaves(params) if _is_inexact(p)]
        assert params and {p.dtype for p in params} == {want}, (
            name, dtype, {p.dtype for p in params})
        complex_ = jnp.dtype(jnp.complex64 if real == jnp.float32 else jnp.complex128)
        # a real model may have a complex output (a phase) of the same precision
        allowed = {complex_} if jnp.issubdtype(want, jnp.complexfloating) else {real, complex_}
        for leaf in jax.tree.leaves(out):
            assert leaf.dtype in allowed, (name, dtype, leaf.dtype)
        grads = [g for g in jax.tree.leaves(grads) if _is_inexact(g)]
        assert {g.dtype for g in grads} == {want}, (name, dtype, {g.dtype for g in grads})
        for leaf in jax.tree.leaves(conditionals):  # probabilities, log_prob: real
            assert leaf.dtype == real, (name, dtype, leaf.dtype)


@pytest.mark.parametrize("name", sorted(CASES))
def test_param_dtype_is_honoured_with_x64_on(name):
    _check(name)


# JAX warns that float64 is truncated to float32 with x64 off (its documented behaviour)
@pytest.mark.filterwarnings("ignore:Explicitly requested dtype")
@pytest.mark.parametrize("name", sorted(CASES))
def test_param_dtype_is_honoured_with_x64_off(name):
    """float64 and complex128 requested with x64 off give float32 and complex64, as in all
    of JAX (the requests float32 and complex64 trace the same, as with x64 on)."""
    with jax.enable_x64(False):
        _check(name, [jnp.float64, jnp.complex128])


@pytest.mark.parametrize("name", sorted(CASES))
def test_integer_param_dtype_is_refused(name):
    build = CASES[name][0]
    for dtype in (jnp.int32, np.int64, bool, np.dtype("uint8")):
        with pytest.raises((ValueError, TypeError), match=r"param_dtype must be a"):
            build(dtype, jax.random.key(0))
