"""Converter for MLP (`params/MLP_0/Dense_k/{kernel,bias}` <-> `MLP.layers[k]`)."""

from typing import Any

import jax
import jax.numpy as jnp

from .. import hilbert as nqh
from ..models import MLP
from ._activations import (
    activation_from_netket,
    activation_to_netket,
    activations_from_netket,
    activations_to_netket,
)
from ._rbm import hilbert_for, with_params, ZEROS
from ._registry import register


def _mlp_from_netket(module: Any, params: dict, hilbert: Any) -> MLP:
    block = params["MLP_0"]
    n_layers = len(block)
    layers = [block[f"Dense_{k}"] for k in range(n_layers)]
    kernel = jnp.asarray(layers[0]["kernel"])
    hilbert = hilbert_for(hilbert, kernel.shape[0], lambda n: nqh.Spin(0.5, n), "MLP")
    hidden_dims = module.hidden_dims
    if hidden_dims is not None:
        hidden_dims = tuple(hidden_dims)
    hidden_dims_alpha = module.hidden_dims_alpha
    if hidden_dims_alpha is not None:
        hidden_dims_alpha = tuple(hidden_dims_alpha)
    model = MLP(
        hilbert,
        hidden_dims=hidden_dims,
        hidden_dims_alpha=hidden_dims_alpha,
        param_dtype=kernel.dtype,
        hidden_activations=activations_from_netket(module.hidden_activations),
        output_activation=activation_from_netket(module.output_activation),
        use_hidden_bias=module.use_hidden_bias,
        use_output_bias=module.use_output_bias,
        kernel_init=ZEROS,
        bias_init=ZEROS,
        key=jax.random.key(0),
    )
    if len(model.layers) != n_layers:
        raise ValueError(
            f"NetKet MLP parameters have {n_layers} Dense layers but the module's hidden_dims "
            f"give {len(model.layers)}."
        )
    pairs = []
    for k, layer in enumerate(layers):
        pairs.append((lambda m, k=k: m.layers[k].kernel, layer["kernel"]))
        pairs.append((lambda m, k=k: m.layers[k].bias, layer.get("bias")))
    return with_params(model, pairs)


def _mlp_to_netket(model: MLP) -> tuple[Any, dict]:
    import netket as nk

    n_hidden = len(model.hidden_dims)
    module = nk.models.MLP(
        hidden_dims=None if model.hidden_dims_alpha is not None else model.hidden_dims or None,
        hidden_dims_alpha=model.hidden_dims_alpha,
        param_dtype=model.layers[0].kernel.dtype,
        hidden_activations=activations_to_netket(model.hidden_activations),
        output_activation=activation_to_netket(model.output_activation),
        use_hidden_bias=(model.layers[0].bias is not None) if n_hidden else True,
        use_output_bias=model.layers[-1].bias is not None,
    )
    block = {}
    for k, layer in enumerate(model.layers):
        dense = {"kernel": layer.kernel}
        if layer.bias is not None:
            dense["bias"] = layer.bias
        block[f"Dense_{k}"] = dense
    return module, {"MLP_0": block}


register("MLP", MLP, _mlp_from_netket, _mlp_to_netket)
