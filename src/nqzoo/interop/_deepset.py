"""Converters for DeepSetMLP and DeepSetRelDistance.

NetKet's parameter trees (3.23):

- `DeepSetMLP`: `DeepSetMLP_0/ds_phi/Dense_k` and `DeepSetMLP_0/ds_rho/Dense_k`, each with
  `kernel` `(in, out)` and (with `use_bias`) `bias`; `ds_phi` is absent without phi.
- `DeepSetRelDistance`: `cusp` `(1,)` and the same tree under `deepset/`.
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import hilbert as nqh
from .._checks import check_fields
from ..models import DeepSetMLP, DeepSetRelDistance
from ._registry import register


def _layers(tree: dict, name: str) -> list[dict]:
    block = tree.get(name, {})
    return [block[f"Dense_{k}"] for k in range(len(block))]


def _widths(layers: list[dict]) -> tuple[int, ...]:
    return tuple(int(jnp.shape(layer["kernel"])[1]) for layer in layers)


def _copy_params(model: DeepSetMLP, phi: list[dict], rho: list[dict]) -> DeepSetMLP:
    """`model` with its dense parameters replaced by NetKet's, every field re-checked."""
    n_phi, n_rho = len(model.phi), len(model.rho)

    def layers(m):  # by index: an empty `phi` tuple is not a node `tree_at` can unpack
        return [m.phi[k] for k in range(n_phi)] + [m.rho[k] for k in range(n_rho)]

    nk_layers = (*phi, *rho)
    model = eqx.tree_at(
        lambda m: [lay.kernel for lay in layers(m)],
        model,
        [jnp.asarray(p["kernel"]) for p in nk_layers],
    )
    if model.rho[0].bias is not None:
        model = eqx.tree_at(
            lambda m: [lay.bias for lay in layers(m)],
            model,
            [jnp.asarray(p["bias"]) for p in nk_layers],
        )
    for lay in layers(model):
        check_fields(lay)
    check_fields(model)
    return model


def _deepset_mlp_from_params(module: Any, tree: dict, activation_name: str) -> DeepSetMLP:
    inner = tree["DeepSetMLP_0"]
    phi, rho = _layers(inner, "ds_phi"), _layers(inner, "ds_rho")
    first = (phi or rho)[0]
    kernel = jnp.asarray(first["kernel"])
    model = DeepSetMLP(
        int(kernel.shape[0]),
        _widths(phi) or None,
        _widths(rho)[:-1],
        hidden_activation=getattr(module, activation_name),
        output_activation=module.output_activation,
        pooling=module.pooling,
        use_bias="bias" in first,
        param_dtype=kernel.dtype,
        key=jax.random.key(0),
    )
    return _copy_params(model, phi, rho)


def _deepset_mlp_to_params(model: DeepSetMLP) -> dict:
    def block(layers):
        out = {}
        for k, lay in enumerate(layers):
            out[f"Dense_{k}"] = {"kernel": lay.kernel}
            if lay.bias is not None:
                out[f"Dense_{k}"]["bias"] = lay.bias
        return out

    inner = {}
    if model.phi:
        inner["ds_phi"] = block(model.phi)
    inner["ds_rho"] = block(model.rho)
    return {"DeepSetMLP_0": inner}


def _use_bias(model: DeepSetMLP) -> bool:
    return model.rho[0].bias is not None


def _mlp_from_netket(module: Any, params: dict, hilbert: Any) -> DeepSetMLP:
    del hilbert  # a DeepSetMLP acts on any set; the widths come from the parameters
    return _deepset_mlp_from_params(module, params, "hidden_activation")


def _mlp_to_netket(model: DeepSetMLP) -> tuple[Any, dict]:
    import netket as nk

    module = nk.models.DeepSetMLP(
        features_phi=model.features_phi or None,
        features_rho=model.features_rho,
        param_dtype=model.rho[0].kernel.dtype,
        hidden_activation=model.hidden_activation,
        output_activation=model.output_activation,
        pooling=model.pooling,
        use_bias=_use_bias(model),
    )
    return module, _deepset_mlp_to_params(model)


def _rel_from_netket(module: Any, params: dict, hilbert: Any) -> DeepSetRelDistance:
    if not isinstance(hilbert, nqh.Particles):
        raise TypeError(f"DeepSetRelDistance needs a Particles box, got hilbert={hilbert!r}.")
    cusp = jnp.asarray(params["cusp"])
    deepset = _deepset_mlp_from_params(module, params["deepset"], "activation")
    model = DeepSetRelDistance(
        hilbert,
        module.layers_phi,
        module.layers_rho,
        deepset.features_phi,
        deepset.features_rho,
        cusp_exponent=module.cusp_exponent,
        activation=module.activation,
        output_activation=module.output_activation,
        pooling=module.pooling,
        use_bias=_use_bias(deepset),
        param_dtype=cusp.dtype,
        key=jax.random.key(0),
    )
    model = eqx.tree_at(lambda m: (m.cusp, m.deepset), model, (cusp, deepset))
    check_fields(model)
    return model


def _rel_to_netket(model: DeepSetRelDistance) -> tuple[Any, dict]:
    import netket as nk

    from ._hilbert import hilbert_to_netket

    module = nk.models.DeepSetRelDistance(
        hilbert=hilbert_to_netket(model.hilbert),
        layers_phi=model.layers_phi,
        layers_rho=model.layers_rho,
        features_phi=model.features_phi,
        features_rho=model.features_rho,
        cusp_exponent=model.cusp_exponent,
        param_dtype=model.cusp.dtype,
        activation=model.activation,
        output_activation=model.output_activation,
        pooling=model.pooling,
        use_bias=_use_bias(model.deepset),
    )
    params = {"cusp": model.cusp, "deepset": _deepset_mlp_to_params(model.deepset)}
    return module, params


register("DeepSetMLP", DeepSetMLP, _mlp_from_netket, _mlp_to_netket)
register("DeepSetRelDistance", DeepSetRelDistance, _rel_from_netket, _rel_to_netket)
