"""Converter of NetKet's MLP (`params/MLP_0/Dense_k/{kernel,bias}` is `MLP.layers[k]`)."""

from typing import Any

from .. import hilbert as nqh
from ._activations import activation_from_netket, activation_to_netket
from ._params import hilbert_for, layer_paths, leading_size, params_of, placeholders, with_params


def _mlp_paths(model: Any) -> dict:
    paths = {}
    for k in range(len(model.layers)):
        paths.update(layer_paths(("MLP_0", f"Dense_{k}"), lambda m, k=k: m.layers[k]))
    return paths


def mlp_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo `MLP` equal to NetKet's (on Spin-1/2 unless `hilbert` is given)."""
    n_sites = leading_size(params, ("MLP_0", "Dense_0", "kernel"), module)
    hilbert = hilbert_for(hilbert, n_sites, lambda n: nqh.Spin(0.5, n), module)
    model = cls(
        hilbert,
        hidden_dims=module.hidden_dims,
        hidden_dims_alpha=module.hidden_dims_alpha,
        param_dtype=module.param_dtype,
        hidden_activations=activation_from_netket(module.hidden_activations),
        output_activation=activation_from_netket(module.output_activation),
        use_hidden_bias=module.use_hidden_bias,
        use_output_bias=module.use_output_bias,
        **placeholders("kernel_init", "bias_init"),
    )
    return with_params(model, params, _mlp_paths(model), module)


def mlp_to_netket(nk_cls: type, model: Any) -> tuple[Any, dict]:
    """NetKet's `MLP` and its parameters, equal to an nqzoo `MLP`."""
    has_hidden = bool(model.hidden_dims)
    module = nk_cls(
        hidden_dims=None if model.hidden_dims_alpha is not None else model.hidden_dims or None,
        hidden_dims_alpha=model.hidden_dims_alpha,
        param_dtype=model.layers[0].kernel.dtype,
        hidden_activations=activation_to_netket(model.hidden_activations),
        output_activation=activation_to_netket(model.output_activation),
        use_hidden_bias=(model.layers[0].bias is not None) if has_hidden else True,
        use_output_bias=model.layers[-1].bias is not None,
    )
    return module, params_of(model, _mlp_paths(model))
