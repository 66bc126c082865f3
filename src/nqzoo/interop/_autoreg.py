"""Converters of NetKet's autoregressive networks (ARNNDense/Conv1D/Conv2D and their Fast*
twins), whose parameters are `params/_layers_{i}/{kernel,bias}`.

NetKet's ARNNs record their Hilbert space, which `from_netket` converts. A fast model holds
the same parameters as its slow twin: it converts to NetKet through `to_slow()` (only NetKet's
class differs), and from NetKet to `(model, state)` with an all-zero cache state.
"""

from typing import Any

import equinox as eqx

from .. import models as nqm
from ._activations import activation_from_netket, activation_to_netket
from ._hilbert import hilbert_to_netket
from ._params import layer_paths, params_of, placeholders, with_params


def _param_layer(model: Any, i: int) -> Any:
    """The layer holding the parameters of NetKet's `_layers_{i}` (a fast model keeps its
    parameters in its slow twin, the field `arnn`)."""
    if isinstance(model, nqm.AbstractFastARNNSequential):
        model = model.arnn
    return model.layers[i]


def _arnn_paths(n_layers: int) -> dict:
    paths = {}
    for i in range(n_layers):
        paths.update(layer_paths((f"_layers_{i}",), lambda m, i=i: _param_layer(m, i)))
    return paths


def _hyperparameters(source: Any) -> dict:
    """The hyperparameters NetKet's and nqzoo's ARNNs share, but the activation and the
    parameters' dtype (read from a NetKet module or an nqzoo model alike)."""
    names = ("features", "machine_pow", "kernel_size", "kernel_dilation")
    return {name: getattr(source, name) for name in names if hasattr(source, name)}


def arnn_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo ARNN equal to NetKet's (of class `cls`; `(model, state)` for a fast one)."""
    kwargs = dict(
        layers=module.layers,
        activation=activation_from_netket(module.activation),
        use_bias=module.use_bias,
        param_dtype=module.param_dtype,
        **_hyperparameters(module),
        **placeholders("kernel_init", "bias_init"),
    )
    paths = _arnn_paths(module.layers)
    if issubclass(cls, nqm.AbstractFastARNNSequential):
        model, state = eqx.nn.make_with_state(cls)(hilbert, **kwargs)
        return with_params(model, params, paths, module), state
    return with_params(cls(hilbert, **kwargs), params, paths, module)


def arnn_to_netket(nk_cls: type, model: Any) -> tuple[Any, dict]:
    """NetKet's ARNN of class `nk_cls` and its parameters, equal to an nqzoo ARNN (a fast
    model converts as its slow twin)."""
    if isinstance(model, nqm.AbstractFastARNNSequential):
        model = model.to_slow()
    if hasattr(model, "lattice_shape") and model.lattice_shape[0] != model.lattice_shape[1]:
        raise ValueError(
            f"NetKet's {nk_cls.__name__} only supports square lattices; this model has "
            f"lattice_shape={model.lattice_shape}."
        )
    module = nk_cls(
        hilbert=hilbert_to_netket(model.hilbert),
        layers=len(model.layers),
        activation=activation_to_netket(model.activation),
        use_bias=model.layers[0].bias is not None,
        param_dtype=model.layers[0].kernel.dtype,
        **_hyperparameters(model),
    )
    return module, params_of(model, _arnn_paths(len(model.layers)))
