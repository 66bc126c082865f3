"""Converters of the group-convolutional network (NetKet's `GCNN_FFT` and `GCNN_Irrep`).

NetKet's parameter tree: `dense_symm/{kernel, bias}` (the lift, kernel `(features[0], 1,
n_sites)`) and `equivariant_layers_{l}/{kernel, bias}` for `l < layers - 1` (kernels
`(features[l+1], features[l], n_elements)`); the biases are absent without `use_bias`. Both
NetKet forms compute the same function of these parameters, as nqzoo's two modes do; the form
is kept across conversions (`GCNN_FFT` <-> `mode="fft"`, `GCNN_Irrep` <-> `mode="irreps"`).
"""

from typing import Any

import jax.numpy as jnp
import numpy as np

from .. import hilbert as nqh
from ..symmetry import PermutationGroup
from ._activations import activation_from_netket, activation_to_netket
from ._params import hilbert_for, layer_paths, params_of, placeholders, with_params


def _paths(layers: int) -> dict:
    paths = layer_paths(("dense_symm",), lambda m: m.dense_symm)
    for l in range(layers - 1):  # noqa: E741
        paths.update(
            layer_paths((f"equivariant_layers_{l}",), lambda m, l=l: m.equivariant_layers[l])  # noqa: E741
        )
    return paths


def _netket_identity() -> Any:
    from netket.models import equivariant

    return equivariant.identity


def _mask(kept: tuple[int, ...] | None, size: int) -> Any:
    from netket.utils import HashableArray

    if kept is None:
        return None
    mask = np.zeros(size, bool)
    mask[list(kept)] = True
    return HashableArray(mask)


def gcnn_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo `GCNN` equal to NetKet's `GCNN_FFT` or `GCNN_Irrep` (Spin-1/2 unless `hilbert`
    is given)."""
    name = type(module).__name__
    perms = np.asarray(module.symmetries)
    group = PermutationGroup(perms)
    if not np.array_equal(group.perms, perms):
        raise ValueError(
            f"NetKet's {name} lists its symmetries with the identity at row "
            f"{int(np.argmax(np.all(perms == np.arange(perms.shape[1]), axis=1)))}; nqzoo's "
            "groups put it first, which would reorder the kernels. Reorder the group."
        )
    hilbert = hilbert_for(hilbert, group.n_sites, lambda n: nqh.Spin(0.5, n), module)
    output_activation = module.output_activation
    if output_activation is _netket_identity():
        output_activation = None
    fft = name == "GCNN_FFT"
    chars = np.asarray(module.characters)
    masks = {
        key: None if getattr(module, key) is None else np.asarray(getattr(module, key))
        for key in ("input_mask", "hidden_mask")
    }
    model = cls(
        hilbert,
        group,
        layers=module.layers,
        features=tuple(module.features),
        characters=chars,
        mode="fft" if fft else "irreps",
        shape=tuple(int(s) for s in module.shape) if fft else None,
        param_dtype=module.param_dtype,
        activation=activation_from_netket(module.activation),
        output_activation=activation_from_netket(output_activation),
        equal_amplitudes=module.equal_amplitudes,
        use_bias=module.use_bias,
        complex_output=module.complex_output,
        **masks,
        **placeholders("kernel_init", "bias_init"),
    )
    return with_params(model, params, _paths(model.layers), module)


def gcnn_to_netket(nk_cls: Any, model: Any) -> tuple[Any, dict]:
    """NetKet's `GCNN_FFT` (mode `"fft"`) or `GCNN_Irrep` (mode `"irreps"`) and its
    parameters, equal to an nqzoo `GCNN`."""
    from netket.models import equivariant as nkm
    from netket.utils import HashableArray

    group = model.symmetries
    chars = np.asarray(model.characters)
    if np.all(chars.imag == 0):
        chars = chars.real
    output_activation = model.output_activation
    kwargs = dict(
        symmetries=HashableArray(np.asarray(group.perms)),
        layers=model.layers,
        features=tuple(model.features),
        characters=HashableArray(chars),
        param_dtype=jnp.dtype(model.dense_symm.kernel.dtype),
        activation=activation_to_netket(model.activation),
        output_activation=(
            _netket_identity()
            if output_activation is None
            else activation_to_netket(output_activation)
        ),
        input_mask=_mask(model.dense_symm.kernel_indices, group.n_sites),
        hidden_mask=(
            _mask(model.equivariant_layers[0].kernel_indices, group.n_elements)
            if model.equivariant_layers
            else None
        ),
        equal_amplitudes=model.equal_amplitudes,
        use_bias=model.dense_symm.bias is not None,
        complex_output=model.complex_output,
    )
    if model.mode == "fft":
        # NetKet's product table holds g^-1 h
        nk_table = np.asarray(group.product_table)[np.asarray(group.inverse)]
        module = nkm.GCNN_FFT(
            product_table=HashableArray(nk_table), shape=tuple(model.shape), **kwargs
        )
    else:
        irreps = tuple(HashableArray(np.asarray(rho)) for rho in group.irrep_matrices())
        module = nkm.GCNN_Irrep(irreps=irreps, **kwargs)
    return module, params_of(model, _paths(model.layers))
