"""Converters for the RBM family (RBM, RBMModPhase, RBMMultiVal).

Each converter builds the nqzoo model with the NetKet module's hyperparameters, then swaps in
NetKet's parameter arrays with `eqx.tree_at` and re-checks every field, so the arrays are
copied bit for bit and a shape mismatch is reported by the usual field check.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import hilbert as nqh
from .._checks import check_fields
from ..models import RBM, RBMModPhase, RBMMultiVal
from ..nn import initializers
from ._activations import activation_from_netket, activation_to_netket
from ._registry import register


def check_tree(node: Any) -> None:
    """[`check_fields`][nqzoo._checks.check_fields] on every module inside `node`."""
    if isinstance(node, eqx.Module):
        check_fields(node)
        for field in dataclasses.fields(node):
            check_tree(getattr(node, field.name))
    elif isinstance(node, tuple | list):
        for item in node:
            check_tree(item)


def with_params(
    model: eqx.Module, pairs: Sequence[tuple[Callable[[Any], Any], Any]]
) -> eqx.Module:
    """Replace the arrays selected by each `where` with `jnp.asarray(value)`, then check.

    Pairs whose current array is None (a disabled bias) must have a None value and are skipped.
    """
    wheres, values = [], []
    for where, value in pairs:
        current = where(model)
        if (current is None) != (value is None):
            raise ValueError(
                "The NetKet parameters and the module's flags disagree on whether a bias is "
                f"present (nqzoo expects {'none' if current is None else 'one'})."
            )
        if current is not None:
            wheres.append(where)
            values.append(jnp.asarray(value))
    model = eqx.tree_at(lambda m: [w(m) for w in wheres], model, values)
    check_tree(model)
    return model


def hilbert_for(hilbert: Any, n_visible: int, default: Callable[[int], Any], name: str) -> Any:
    """`hilbert`, or `default(n_visible)` if None; checks that its size is `n_visible`."""
    if hilbert is None:
        return default(n_visible)
    if hilbert.size != n_visible:
        raise ValueError(
            f"The NetKet {name} parameters act on {n_visible} sites but hilbert={hilbert!r} "
            f"has size {hilbert.size}."
        )
    return hilbert


def _key() -> jax.Array:
    return jax.random.key(0)


#: Converters build models with this initialiser and then swap NetKet's arrays in (no random
#: draws, which would compile a sampler for every new shape).
ZEROS = initializers.zeros


# RBM ------------------------------------------------------------------------------------------


def _rbm_from_netket(module: Any, params: dict, hilbert: Any) -> RBM:
    kernel = jnp.asarray(params["Dense"]["kernel"])
    hilbert = hilbert_for(hilbert, kernel.shape[0], lambda n: nqh.Spin(0.5, n), "RBM")
    model = RBM(
        hilbert,
        alpha=module.alpha,
        use_hidden_bias="bias" in params["Dense"],
        use_visible_bias="visible_bias" in params,
        activation=activation_from_netket(module.activation),
        param_dtype=kernel.dtype,
        kernel_init=ZEROS,
        hidden_bias_init=ZEROS,
        visible_bias_init=ZEROS,
        key=_key(),
    )
    return with_params(
        model,
        [
            (lambda m: m.kernel, kernel),
            (lambda m: m.hidden_bias, params["Dense"].get("bias")),
            (lambda m: m.visible_bias, params.get("visible_bias")),
        ],
    )


def _rbm_params(model: RBM) -> dict:
    dense = {"kernel": model.kernel}
    if model.hidden_bias is not None:
        dense["bias"] = model.hidden_bias
    params: dict = {"Dense": dense}
    if model.visible_bias is not None:
        params["visible_bias"] = model.visible_bias
    return params


def _rbm_to_netket(model: RBM) -> tuple[Any, dict]:
    import netket as nk

    module = nk.models.RBM(
        alpha=model.alpha,
        use_hidden_bias=model.hidden_bias is not None,
        use_visible_bias=model.visible_bias is not None,
        activation=activation_to_netket(model.activation),
        param_dtype=model.kernel.dtype,
    )
    return module, _rbm_params(model)


# RBMModPhase ----------------------------------------------------------------------------------


def _modphase_from_netket(module: Any, params: dict, hilbert: Any) -> RBMModPhase:
    mod, phase = params["Dense_0"], params["Dense_1"]
    kernel = jnp.asarray(mod["kernel"])
    hilbert = hilbert_for(hilbert, kernel.shape[0], lambda n: nqh.Spin(0.5, n), "RBMModPhase")
    model = RBMModPhase(
        hilbert,
        alpha=module.alpha,
        use_hidden_bias="bias" in mod,
        activation=activation_from_netket(module.activation),
        param_dtype=kernel.dtype,
        kernel_init=ZEROS,
        hidden_bias_init=ZEROS,
        key=_key(),
    )
    return with_params(
        model,
        [
            (lambda m: m.modulus_kernel, kernel),
            (lambda m: m.modulus_bias, mod.get("bias")),
            (lambda m: m.phase_kernel, phase["kernel"]),
            (lambda m: m.phase_bias, phase.get("bias")),
        ],
    )


def _modphase_to_netket(model: RBMModPhase) -> tuple[Any, dict]:
    import netket as nk

    module = nk.models.RBMModPhase(
        alpha=model.alpha,
        use_hidden_bias=model.modulus_bias is not None,
        activation=activation_to_netket(model.activation),
        param_dtype=model.modulus_kernel.dtype,
    )
    params = {}
    for name, kernel, bias in [
        ("Dense_0", model.modulus_kernel, model.modulus_bias),
        ("Dense_1", model.phase_kernel, model.phase_bias),
    ]:
        params[name] = {"kernel": kernel} if bias is None else {"kernel": kernel, "bias": bias}
    return module, params


# RBMMultiVal ----------------------------------------------------------------------------------


def _multival_from_netket(module: Any, params: dict, hilbert: Any) -> RBMMultiVal:
    inner = params["RBM"]
    kernel = jnp.asarray(inner["Dense"]["kernel"])
    n_classes = module.n_classes
    n_sites, rest = divmod(kernel.shape[0], n_classes)
    if rest:
        raise ValueError(
            f"NetKet RBMMultiVal kernel has {kernel.shape[0]} rows, not a multiple of "
            f"n_classes={n_classes}."
        )
    hilbert = hilbert_for(
        hilbert, n_sites, lambda n: nqh.Fock(n_classes - 1, n), "RBMMultiVal"
    )
    if hilbert.local_size != n_classes:
        raise ValueError(
            f"NetKet RBMMultiVal has n_classes={n_classes} but hilbert={hilbert!r} has "
            f"{hilbert.local_size} local states."
        )
    model = RBMMultiVal(
        hilbert,
        alpha=module.alpha,
        use_hidden_bias="bias" in inner["Dense"],
        use_visible_bias="visible_bias" in inner,
        activation=activation_from_netket(module.activation),
        param_dtype=kernel.dtype,
        kernel_init=ZEROS,
        hidden_bias_init=ZEROS,
        visible_bias_init=ZEROS,
        key=_key(),
    )
    return with_params(
        model,
        [
            (lambda m: m.rbm.kernel, kernel),
            (lambda m: m.rbm.hidden_bias, inner["Dense"].get("bias")),
            (lambda m: m.rbm.visible_bias, inner.get("visible_bias")),
        ],
    )


def _multival_to_netket(model: RBMMultiVal) -> tuple[Any, dict]:
    import netket as nk

    rbm = model.rbm
    module = nk.models.RBMMultiVal(
        n_classes=model.n_classes,
        alpha=rbm.alpha,
        use_hidden_bias=rbm.hidden_bias is not None,
        use_visible_bias=rbm.visible_bias is not None,
        activation=activation_to_netket(rbm.activation),
        param_dtype=rbm.kernel.dtype,
    )
    return module, {"RBM": _rbm_params(rbm)}


register("RBM", RBM, _rbm_from_netket, _rbm_to_netket)
register("RBMModPhase", RBMModPhase, _modphase_from_netket, _modphase_to_netket)
register("RBMMultiVal", RBMMultiVal, _multival_from_netket, _multival_to_netket)
