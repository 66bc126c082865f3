"""Runtime shape checking: on by default (RBM family, MLP and the field checks), off with the
switch, free inside `eqx.filter_jit` after tracing, and cheap at import (lazy decoration)."""

import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
from jaxtyping import Array, Float

import nqzoo as nqz
import nqzoo.models._rbm as rbm_module
from nqzoo._typecheck import check_fields, decorate_all, typechecker


HI = nqz.hilbert.Spin(0.5, 6)


def _models(key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {
        "RBM": nqz.models.RBM(HI, alpha=2, key=k1),
        "RBMModPhase": nqz.models.RBMModPhase(HI, key=k2),
        "RBMMultiVal": nqz.models.RBMMultiVal(nqz.hilbert.Fock(2, 6), key=k3),
        "MLP": nqz.models.MLP(HI, hidden_dims=(4,), key=k4),
    }


@pytest.mark.parametrize("name", ["RBM", "RBMModPhase", "RBMMultiVal", "MLP"])
def test_wrong_input_width(name, getkey):
    model = _models(getkey())[name]
    with pytest.raises(TypeError, match=r"parameter 'x'(.|\n)*Actual value: f64\[3,5\]"
                                        r"(.|\n)*\{self\.hilbert\.size\}") as info:
        model(jnp.ones((3, 5)))
    assert isinstance(info.value, TypeError)
    # The message also states the size the axis expects.
    assert "self.hilbert.size=6" in str(info.value)


@pytest.mark.parametrize("bad", ["abc", [[1, -1, 1, -1, 1, -1]], None, 3.0])
def test_non_array_input(bad, getkey):
    model = _models(getkey())["RBM"]
    with pytest.raises(TypeError, match=r"parameter 'x'"):
        model(bad)


@pytest.mark.parametrize(
    "name,where,shape,field",
    [
        ("RBM", lambda m: m.kernel, (6, 5), r"RBM\.kernel is float64\[6, 5\].*'6 12'"),
        ("RBM", lambda m: m.hidden_bias, (1,), r"RBM\.hidden_bias is float64\[1\].*'12'"),
        ("RBM", lambda m: m.visible_bias, (5,), r"RBM\.visible_bias is float64\[5\].*'6'"),
        ("RBMModPhase", lambda m: m.phase_bias, (3,), r"RBMModPhase\.phase_bias is float64\[3\]"),
        ("RBMMultiVal", lambda m: m.rbm.kernel, (18, 5), r"RBM\.kernel is float64\[18, 5\]"),
        ("MLP", lambda m: m.layers[0].bias, (3,), r"Dense\.bias is float64\[3\].*'4'"),
    ],
)
def test_wrong_parameter_via_tree_at(name, where, shape, field, getkey):
    model = _models(getkey())[name]
    bad = eqx.tree_at(where, model, jnp.zeros(shape))
    with pytest.raises(TypeError, match=field):
        bad(jnp.ones((2, 6)))
    with pytest.raises(TypeError, match=field):  # also under jit (at trace time)
        eqx.filter_jit(lambda m, x: m(x))(bad, jnp.ones((2, 6)))


def test_complex_parameter_in_real_only_model(getkey):
    model = _models(getkey())["RBMModPhase"]
    bad = eqx.tree_at(lambda m: m.modulus_kernel, model,
                      model.modulus_kernel.astype(jnp.complex128))
    with pytest.raises(TypeError, match=r"RBMModPhase\.modulus_kernel is complex128\[6, 6\]"):
        bad(jnp.ones(6))


def test_wrong_parameter_from_initializer(getkey):
    with pytest.raises(TypeError, match=r"RBM\.hidden_bias is float64\[1\].*'12'"):
        nqz.models.RBM(HI, alpha=2, hidden_bias_init=lambda k, s, d: jnp.zeros((1,), d),
                       key=getkey())
    with pytest.raises(TypeError, match=r"RBM\.kernel is float64\[12, 6\].*'6 6'"):
        nqz.models.RBM(HI, kernel_init=lambda k, s, d: jnp.zeros((12, 6), d), key=getkey())
    with pytest.raises(TypeError, match=r"Dense\.kernel is float64\[6, 3\]"):
        nqz.models.MLP(HI, hidden_dims=(4,), kernel_init=lambda k, s, d: jnp.zeros((6, 3), d),
                       key=getkey())


def test_checks_run_only_at_trace_time(getkey, monkeypatch):
    calls = []
    original = rbm_module.check_fields
    monkeypatch.setattr(rbm_module, "check_fields", lambda m: (calls.append(1), original(m)))
    traces = []

    @eqx.filter_jit
    def f(model, x):
        traces.append(1)
        return model(x)

    model = nqz.models.RBM(HI, alpha=2, key=getkey())  # __check_init__: one call
    assert len(calls) == 1
    x = HI.random_state(getkey(), 8)
    first = f(model, x)
    assert len(traces) == 1 and len(calls) == 2
    for _ in range(5):
        np.testing.assert_array_equal(f(model, x), first)
        f(model, HI.random_state(getkey(), 8))
    assert len(traces) == 1 and len(calls) == 2  # no retrace, no check after the first call
    bad = eqx.tree_at(lambda m: m.kernel, model, jnp.zeros((6, 3)))
    with pytest.raises(TypeError, match=r"RBM\.kernel"):
        f(bad, x)  # a new shape retraces, and the check catches it


def test_disable_switch_turns_everything_off():
    script = textwrap.dedent(
        """
        import jax, jax.numpy as jnp, equinox as eqx
        jax.config.update("jax_enable_x64", True)
        import nqzoo as nqz
        hi = nqz.hilbert.Spin(0.5, 6)
        key = jax.random.key(0)
        # wrong parameter from an initialiser: accepted (the bias broadcasts)
        m = nqz.models.RBM(hi, alpha=2, hidden_bias_init=lambda k, s, d: jnp.zeros((1,), d),
                           key=key)
        print(m(jnp.ones((2, 6))).shape)
        # wrong parameter via tree_at: accepted
        m = eqx.tree_at(lambda m: m.hidden_bias, m, jnp.zeros(()))
        print(m(jnp.ones(6)).shape)
        # list input and a wrongly shaped input that still broadcasts through
        print(m([[1, -1, 1, -1, 1, -1]]).shape)
        print("unchecked")
        """
    )
    env = {**os.environ, "JAXTYPING_DISABLE": "1", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(2,)", "()", "(1,)", "unchecked"]


class _Pair(eqx.Module):
    a: Float[Array, "n"]  # noqa: F821
    b: Float[Array, "n {self.k}"]
    k: int = eqx.field(static=True)


def test_field_check_names_bound_axes_and_evaluates_symbolic_ones():
    check_fields(_Pair(jnp.ones(3), jnp.ones((3, 2)), 2))  # well formed: no error
    with pytest.raises(TypeError) as info:
        check_fields(_Pair(jnp.ones(3), jnp.ones((4, 2)), 2))
    message = str(info.value)
    assert "_Pair.b is float64[4, 2], which does not match its annotation Float[Array, 'n 2']" \
        in message
    assert "n=3" in message  # the size `n` was bound to by the field before
    with pytest.raises(TypeError, match=r"_Pair\.b is float64\[3, 3\].*'n 2'"):
        check_fields(_Pair(jnp.ones(3), jnp.ones((3, 3)), 2))  # the symbolic axis


def test_field_check_follows_the_config_switch():
    bad = _Pair(jnp.ones(3), jnp.ones((4, 2)), 2)
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        check_fields(bad)
    finally:
        jaxtyping.config.update("jaxtyping_disable", False)
    with pytest.raises(TypeError, match=r"_Pair\.b"):
        check_fields(bad)


def test_unsupported_annotation_is_an_annotation_error():
    def f(x: 3):  # not a type: beartype refuses it at the first call
        return x

    checked = jaxtyping.jaxtyped(f, typechecker=typechecker)
    with pytest.raises(jaxtyping.AnnotationError, match=r"test_shape_checks.*\bf\b.*parameter"):
        checked(1)


def test_every_annotation_of_the_package_is_checkable():
    # beartype is applied at the first call; apply it now to everything imported so far, so an
    # annotation it cannot handle fails here instead of in some rarely called function.
    import nqzoo.interop.netket  # noqa: F401 - its functions too

    decorate_all()
    assert decorate_all() == 0


def test_import_is_lazy_and_keeps_the_dependencies_bytecode():
    script = textwrap.dedent(
        """
        import sys
        import nqzoo
        from nqzoo import _typecheck
        # Modules imported while the hook ran an nqzoo module get jaxtyping's bytecode file
        # names, so they are compiled from source (jax, equinox, ...: seconds of import).
        # (beartype loads a few parts of itself at its first decoration, which may come from
        # a call at import time, e.g. a default argument `initializers.lecun_normal()`.)
        recompiled = sorted(
            name for name, module in sys.modules.items()
            if not name.startswith(("nqzoo", "beartype"))
            and "jaxtyping" in (getattr(module, "__cached__", None) or "").rsplit("/", 1)[-1]
        )
        lazy = list(_typecheck._LAZY)
        print(len(recompiled), recompiled[:10])
        print(len(lazy), sum(f.checked is None for f in lazy))
        """
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    recompiled, decoration = done.stdout.splitlines()
    assert recompiled == "0 []"
    n_functions, n_pending = map(int, decoration.split())
    # beartype runs only for the few functions called while importing
    assert n_functions > 100 and n_pending > 0.9 * n_functions
