"""Converters for RBM (pattern for the other families)."""

from typing import Any

import jax.numpy as jnp

from .. import hilbert as nqh
from ..models import RBM
from ._registry import register


def _rbm_from_netket(module: Any, params: dict, hilbert: Any) -> RBM:
    kernel = jnp.asarray(params["Dense"]["kernel"])
    n_visible = kernel.shape[0]
    hilbert = nqh.Spin(0.5, n_visible) if hilbert is None else hilbert
    hidden_bias = params["Dense"].get("bias")
    visible_bias = params.get("visible_bias")
    return RBM(
        hilbert,
        alpha=module.alpha,
        use_hidden_bias=hidden_bias is not None,
        use_visible_bias=visible_bias is not None,
        activation=module.activation,
        param_dtype=kernel.dtype,
        kernel_init=lambda *_: kernel,
        hidden_bias_init=lambda *_: jnp.asarray(hidden_bias),
        visible_bias_init=lambda *_: jnp.asarray(visible_bias),
        key=_dummy_key(),
    )


def _rbm_to_netket(model: RBM) -> tuple[Any, dict]:
    import netket as nk

    dense = {"kernel": model.kernel}
    if model.hidden_bias is not None:
        dense["bias"] = model.hidden_bias
    params: dict = {"Dense": dense}
    if model.visible_bias is not None:
        params["visible_bias"] = model.visible_bias
    module = nk.models.RBM(
        alpha=model.alpha,
        use_hidden_bias=model.hidden_bias is not None,
        use_visible_bias=model.visible_bias is not None,
        activation=model.activation,
        param_dtype=model.kernel.dtype,
    )
    return module, params


def _dummy_key():
    import jax

    return jax.random.key(0)


register("RBM", RBM, _rbm_from_netket, _rbm_to_netket)
