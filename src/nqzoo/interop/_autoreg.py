"""Converters for the autoregressive networks (`params/_layers_{i}/{kernel,bias}`).

NetKet's ARNNs record their Hilbert space; `from_netket` converts it (or uses the `hilbert`
given). Fast models convert to `(model, state)` with an all-zero cache state.
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import models as nqm
from ..nn import _activations as nqa, initializers
from ._hilbert import hilbert_to_netket
from ._registry import register


def _activation_from_netket(fn: Any) -> Any:
    import netket as nk

    return nqa.reim_selu if fn is nk.nn.activation.reim_selu else fn


def _activation_to_netket(fn: Any) -> Any:
    import netket as nk

    return nk.nn.activation.reim_selu if fn is nqa.reim_selu else fn


def _copy_params(model: eqx.Module, params: dict) -> eqx.Module:
    n_layers = len(model.layers)
    if sorted(params) != sorted(f"_layers_{i}" for i in range(n_layers)):
        raise ValueError(
            f"Expected NetKet parameters _layers_0 … _layers_{n_layers - 1}, got {sorted(params)}."
        )
    wheres, values = [], []
    for i in range(n_layers):
        layer = params[f"_layers_{i}"]
        wheres.append(lambda m, i=i: m.layers[i].kernel)
        values.append(jnp.asarray(layer["kernel"]))
        if ("bias" in layer) != (model.layers[i].bias is not None):
            raise ValueError(f"NetKet layer _layers_{i} and use_bias disagree on the bias.")
        if "bias" in layer:
            wheres.append(lambda m, i=i: m.layers[i].bias)
            values.append(jnp.asarray(layer["bias"]))
    for where, value in zip(wheres, values):
        current = where(model)
        if current.shape != value.shape:
            raise ValueError(
                f"NetKet parameter of shape {value.shape} does not fit nqzoo's {current.shape}."
            )
    return eqx.tree_at(lambda m: [w(m) for w in wheres], model, values)


def _from_netket(slow_cls, fast_cls, kind):
    def convert(module: Any, params: dict, hilbert: Any):
        kernel = jnp.asarray(params["_layers_0"]["kernel"])
        kwargs = dict(
            layers=module.layers,
            features=module.features,
            activation=_activation_from_netket(module.activation),
            use_bias=module.use_bias,
            param_dtype=kernel.dtype,
            machine_pow=module.machine_pow,
            # placeholders (replaced by NetKet's parameters below); zeros skip the random init
            kernel_init=initializers.zeros,
            bias_init=initializers.zeros,
            key=jax.random.key(0),
        )
        if kind == "conv1d":
            kwargs.update(kernel_size=module.kernel_size, kernel_dilation=module.kernel_dilation)
        elif kind == "conv2d":
            kwargs.update(
                kernel_size=tuple(module.kernel_size),
                kernel_dilation=tuple(module.kernel_dilation),
            )
        if fast_cls is None:
            return _copy_params(slow_cls(hilbert, **kwargs), params)
        model, state = eqx.nn.make_with_state(fast_cls)(hilbert, **kwargs)
        return _copy_params(model, params), state

    return convert


def _to_netket(netket_name, kind):
    def convert(model) -> tuple[Any, dict]:
        import netket as nk

        if kind == "conv2d" and model.lattice_shape[0] != model.lattice_shape[1]:
            raise ValueError(
                f"NetKet's {netket_name} only supports square lattices; this model has "
                f"lattice_shape={model.lattice_shape}."
            )
        kwargs = dict(
            hilbert=hilbert_to_netket(model.hilbert),
            layers=len(model.layers),
            features=model.features,
            activation=_activation_to_netket(model.activation),
            use_bias=model.layers[0].bias is not None,
            param_dtype=model.layers[0].kernel.dtype,
            machine_pow=model.machine_pow,
        )
        if kind != "dense":
            kwargs.update(kernel_size=model.kernel_size, kernel_dilation=model.kernel_dilation)
        module = getattr(nk.models, netket_name)(**kwargs)
        params = {}
        for i, layer in enumerate(model.layers):
            params[f"_layers_{i}"] = {"kernel": layer.kernel}
            if layer.bias is not None:
                params[f"_layers_{i}"]["bias"] = layer.bias
        return module, params

    return convert


for _slow, _fast, _kind in [
    (nqm.ARNNDense, nqm.FastARNNDense, "dense"),
    (nqm.ARNNConv1D, nqm.FastARNNConv1D, "conv1d"),
    (nqm.ARNNConv2D, nqm.FastARNNConv2D, "conv2d"),
]:
    register(
        _slow.__name__,
        _slow,
        _from_netket(_slow, None, _kind),
        _to_netket(_slow.__name__, _kind),
    )
    register(
        _fast.__name__,
        _fast,
        _from_netket(_slow, _fast, _kind),
        _to_netket(_fast.__name__, _kind),
    )
