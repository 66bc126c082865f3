"""Converters of NetKet's DeepSetMLP and DeepSetRelDistance.

NetKet's parameter trees (3.23):

- `DeepSetMLP`: `DeepSetMLP_0/ds_phi/Dense_k` and `DeepSetMLP_0/ds_rho/Dense_k`, each with
  `kernel` `(in, out)` and (with `use_bias`) `bias`; `ds_phi` is absent without phi.
- `DeepSetRelDistance`: `cusp` `(1,)` (present with or without a cusp) and a DeepSetMLP's tree
  under `deepset/`.
"""

from typing import Any

from ._activations import activation_from_netket, activation_to_netket
from ._hilbert import hilbert_to_netket
from ._params import layer_paths, leading_size, nested, params_of, placeholders, with_params


def _mlp_paths(model: Any) -> dict:
    """The paths of a DeepSetMLP's layers (by index: an empty `phi` has none)."""
    paths = {}
    for name, block in (("ds_phi", "phi"), ("ds_rho", "rho")):
        for k in range(len(getattr(model, block))):
            prefix = ("DeepSetMLP_0", name, f"Dense_{k}")
            paths.update(layer_paths(prefix, lambda m, b=block, k=k: getattr(m, b)[k]))
    return paths


def _rel_paths(model: Any) -> dict:
    deepset = nested(("deepset",), lambda m: m.deepset, _mlp_paths(model.deepset))
    return {("cusp",): lambda m: m.cusp, **deepset}


def _from_kwargs(module: Any, *initializers: str) -> dict:
    """The nqzoo keyword arguments both NetKet modules give the same way (and placeholder
    initialisers, `initializers` with the dense layers' ones)."""
    return dict(
        output_activation=activation_from_netket(module.output_activation),
        pooling=module.pooling,
        use_bias=module.use_bias,
        param_dtype=module.param_dtype,
        **placeholders("kernel_init", "bias_init", *initializers),
    )


def _to_kwargs(model: Any, deepset: Any) -> dict:
    """NetKet's keyword arguments both nqzoo models give the same way."""
    return dict(
        output_activation=activation_to_netket(deepset.output_activation),
        pooling=deepset.pooling,
        use_bias=deepset.rho[0].bias is not None,
        param_dtype=deepset.rho[0].kernel.dtype,
        features_phi=model.features_phi,
        features_rho=model.features_rho,
    )


def _has_phi(features_phi: Any) -> bool:
    """Whether NetKet builds a phi network for these widths (None and () mean none)."""
    return isinstance(features_phi, int) or bool(features_phi)


def deepset_mlp_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo `DeepSetMLP` equal to NetKet's; the element width is read from the first
    kernel (a DeepSetMLP acts on any set, so `hilbert` is not used)."""
    del hilbert
    first = ("DeepSetMLP_0", "ds_phi" if _has_phi(module.features_phi) else "ds_rho", "Dense_0")
    model = cls(
        leading_size(params, (*first, "kernel"), module),
        module.features_phi,
        module.features_rho,
        hidden_activation=activation_from_netket(module.hidden_activation),
        **_from_kwargs(module),
    )
    return with_params(model, params, _mlp_paths(model), module)


def deepset_mlp_to_netket(nk_cls: type, model: Any) -> tuple[Any, dict]:
    """NetKet's `DeepSetMLP` and its parameters, equal to an nqzoo `DeepSetMLP`."""
    module = nk_cls(
        hidden_activation=activation_to_netket(model.hidden_activation),
        **{**_to_kwargs(model, model), "features_phi": model.features_phi or None},
    )
    return module, params_of(model, _mlp_paths(model))


def reldist_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo `DeepSetRelDistance` equal to NetKet's, on the box the module records."""
    model = cls(
        hilbert,
        module.layers_phi,
        module.layers_rho,
        module.features_phi,
        module.features_rho,
        cusp_exponent=module.cusp_exponent,
        activation=activation_from_netket(module.activation),
        **_from_kwargs(module, "params_init"),
    )
    return with_params(model, params, _rel_paths(model), module)


def reldist_to_netket(nk_cls: type, model: Any) -> tuple[Any, dict]:
    """NetKet's `DeepSetRelDistance` and its parameters, equal to an nqzoo one."""
    module = nk_cls(
        hilbert=hilbert_to_netket(model.hilbert),
        layers_phi=model.layers_phi,
        layers_rho=model.layers_rho,
        cusp_exponent=model.cusp_exponent,
        activation=activation_to_netket(model.activation),
        **_to_kwargs(model, model.deepset),
    )
    return module, params_of(model, _rel_paths(model))
