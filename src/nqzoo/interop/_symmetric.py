"""Converters of Jastrow, RBMSymm, the matrix product states and Symmetrized (NetKet's
`SymmExpSum`).

NetKet's parameter trees: `Jastrow` has `kernel` (the `N(N-1)/2` lower-triangle weights);
`RBMSymm` has `Dense/kernel` `(F, 1, N)`, `Dense/bias` `(F,)` and `visible_bias` `(1,)` (the
biases absent when their flag is off); `MPSOpen` has `left_tensors`, `right_tensors` and
`middle_tensors`, `MPSPeriodic` has `tensors` (deviations from the reference tensors, as
nqzoo stores them); `SymmExpSum` has its module's tree under `module`.
"""

import math
from typing import Any

import numpy as np

from .. import hilbert as nqh, models as nqm
from ..symmetry import PermutationGroup
from ._activations import activation_from_netket, activation_to_netket
from ._hilbert import hilbert_to_netket
from ._params import (
    describe,
    hilbert_for,
    leading_size,
    params_of,
    placeholders,
    show,
    with_params,
    within,
)


_JASTROW_PATHS = {("kernel",): lambda m: m.kernel}
_RBM_SYMM_PATHS = {
    ("Dense", "kernel"): lambda m: m.kernel,
    ("Dense", "bias"): lambda m: m.hidden_bias,
    ("visible_bias",): lambda m: m.visible_bias,
}
_MPS_OPEN_PATHS = {
    ("left_tensors",): lambda m: m.left_tensors,
    ("right_tensors",): lambda m: m.right_tensors,
    ("middle_tensors",): lambda m: m.middle_tensors,
}
_MPS_PERIODIC_PATHS = {("tensors",): lambda m: m.tensors}


def _perms_of(symmetries: Any) -> np.ndarray:
    """The `(G, N)` permutation array of NetKet's `symmetries` (a NetKet `PermutationGroup`,
    whose `to_array()` is nqzoo's `perms`, or a `HashableArray` of the same array)."""
    wrapped = getattr(symmetries, "wrapped", None)
    return np.asarray(symmetries if wrapped is None else wrapped)


def _netket_group(group: PermutationGroup) -> Any:
    """NetKet's `PermutationGroup` whose `to_array()` is `group.perms`, elements in order."""
    from netket.utils.group import Permutation, PermutationGroup as NetKetGroup

    elems = [Permutation(inverse_permutation_array=row) for row in np.asarray(group.perms)]
    return NetKetGroup(elems, degree=group.n_sites)


# -- Jastrow -------------------------------------------------------------------------------


def jastrow_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo `Jastrow` equal to NetKet's (Spin-1/2 unless `hilbert` is given)."""
    n_pairs = leading_size(params, ("kernel",), module)
    n_sites = (1 + math.isqrt(1 + 8 * n_pairs)) // 2
    if n_sites * (n_sites - 1) // 2 != n_pairs:
        raise ValueError(
            f"{show(('kernel',))} of NetKet's Jastrow has {n_pairs} entries, which is not "
            "N (N - 1) / 2 for any number of sites N."
        )
    hilbert = hilbert_for(hilbert, n_sites, lambda n: nqh.Spin(0.5, n), module)
    model = cls(hilbert, param_dtype=module.param_dtype, **placeholders("kernel_init"))
    return with_params(model, params, _JASTROW_PATHS, module)


def jastrow_to_netket(nk_cls: type, model: Any) -> tuple[Any, dict]:
    """NetKet's `Jastrow` and its parameters, equal to an nqzoo `Jastrow`."""
    return nk_cls(param_dtype=model.kernel.dtype), params_of(model, _JASTROW_PATHS)


# -- RBMSymm -------------------------------------------------------------------------------


def _alpha_giving(features: int, n_sites: int, n_elements: int, candidates: list) -> Any:
    """The first of `candidates` for which NetKet's `int(alpha * N / G)` is `features`."""
    exact = features * n_elements / n_sites
    tries = [*candidates, int(exact) if exact.is_integer() else exact]
    tries.append(math.nextafter(exact, math.inf))
    for alpha in tries:
        if int(alpha * n_sites / n_elements) == features:
            return alpha
    raise AssertionError("unreachable: nextafter(F G / N) gives F features")  # pragma: no cover


def rbm_symm_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo `RBMSymm` equal to NetKet's (Spin-1/2 unless `hilbert` is given).

    NetKet truncates `int(alpha * N / G)`; nqzoo needs `alpha * N / G` to be an integer, so
    the nqzoo model gets NetKet's `alpha` when it is one, else `F * G / N` for the `F`
    features the kernel has (the same network)."""
    group = PermutationGroup(_perms_of(module.symmetries))
    hilbert = hilbert_for(hilbert, group.n_sites, lambda n: nqh.Spin(0.5, n), module)
    kernel = params.get("Dense", {}).get("kernel") if hasattr(params, "get") else None
    exact = module.alpha * group.n_sites / group.n_elements
    if float(exact).is_integer() or kernel is None:
        alpha = module.alpha
    else:
        features = int(np.shape(kernel)[0])
        alpha = features * group.n_elements / group.n_sites
        alpha = int(alpha) if float(alpha).is_integer() else alpha
    model = cls(
        hilbert,
        group,
        alpha=alpha,
        use_visible_bias=module.use_visible_bias,
        use_hidden_bias=module.use_hidden_bias,
        param_dtype=module.param_dtype,
        activation=activation_from_netket(module.activation),
        **placeholders("kernel_init", "hidden_bias_init", "visible_bias_init"),
    )
    return with_params(model, params, _RBM_SYMM_PATHS, module)


def rbm_symm_to_netket(nk_cls: type, model: Any) -> tuple[Any, dict]:
    """NetKet's `RBMSymm` and its parameters, equal to an nqzoo `RBMSymm` (the group as a
    `HashableArray` of `perms`, which NetKet's `DenseSymm` indexes with)."""
    from netket.utils import HashableArray

    group = model.symmetries
    alpha = _alpha_giving(model.features, group.n_sites, group.n_elements, [model.alpha])
    module = nk_cls(
        symmetries=HashableArray(np.asarray(group.perms)),
        alpha=alpha,
        use_visible_bias=model.visible_bias is not None,
        use_hidden_bias=model.hidden_bias is not None,
        param_dtype=model.kernel.dtype,
        activation=activation_to_netket(model.activation),
    )
    return module, params_of(model, _RBM_SYMM_PATHS)


# -- matrix product states -----------------------------------------------------------------


def _mps_hilbert(module: Any, hilbert: Any) -> Any:
    if hilbert is None:  # NetKet's MPS records its space; from_netket converts it
        raise ValueError(f"NetKet's {describe(module)} has no Hilbert space.")
    return hilbert


def mps_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo `MPSOpen` or `MPSPeriodic` equal to NetKet's (on the space it records)."""
    hilbert = _mps_hilbert(module, hilbert)
    kwargs = dict(param_dtype=module.param_dtype, **placeholders("kernel_init"))
    if cls is nqm.MPSPeriodic:
        model = cls(hilbert, module.bond_dim, module.symperiod, **kwargs)
        return with_params(model, params, _MPS_PERIODIC_PATHS, module)
    model = cls(hilbert, module.bond_dim, **kwargs)
    return with_params(model, params, _MPS_OPEN_PATHS, module)


def mps_to_netket(nk_cls: Any, model: Any) -> tuple[Any, dict]:
    """NetKet's `MPSOpen` or `MPSPeriodic` (in `netket.models.tensor_networks`; `nk_cls` is
    ignored) and its parameters, equal to an nqzoo MPS. A period equal to the number of
    sites becomes NetKet's default `symperiod=None`."""
    from netket.models import tensor_networks

    hilbert = hilbert_to_netket(model.hilbert)
    if isinstance(model, nqm.MPSPeriodic):
        symperiod = None if model.symperiod == model.hilbert.size else model.symperiod
        module = tensor_networks.MPSPeriodic(
            hilbert=hilbert,
            bond_dim=model.bond_dim,
            symperiod=symperiod,
            param_dtype=model.tensors.dtype,
        )
        return module, params_of(model, _MPS_PERIODIC_PATHS)
    module = tensor_networks.MPSOpen(
        hilbert=hilbert, bond_dim=model.bond_dim, param_dtype=model.left_tensors.dtype
    )
    return module, params_of(model, _MPS_OPEN_PATHS)


# -- Symmetrized and NetKet's SymmExpSum ---------------------------------------------------


def symmetrized_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo `Symmetrized` equal to NetKet's `SymmExpSum`: its module converted by
    `from_netket` (with `hilbert`), the same group and characters (both sum
    `χ_g ψ(g x) / |G|`). NetKet's `character_id` picks a row of its character table, which
    must be one-dimensional here."""
    from .netket import from_netket

    if "module" not in params:
        raise ValueError(
            f"The variables do not match NetKet's {describe(module)}: missing the "
            f"parameters {show(('module',))} of its wrapped module."
        )
    extra = sorted(set(params) - {"module"})
    if extra:
        raise ValueError(
            f"The variables do not match NetKet's {describe(module)}: unexpected parameter "
            f"{show((extra[0],))} (a SymmExpSum has only its module's parameters, under module)."
        )
    with within(("module",)):  # messages name params/module/...
        inner = from_netket(module.module, {"params": params["module"]}, hilbert=hilbert)
    if isinstance(inner, tuple):  # a fast autoregressive model: its cache is not needed here
        inner = inner[0]
    perms = _perms_of(module.symm_group)
    group = PermutationGroup(perms)
    if module.characters is not None:
        chi = np.asarray(module.characters.wrapped)
    elif module.character_id is not None:
        chi = np.asarray(module.symm_group.character_table()[module.character_id])
    else:
        chi = np.ones(len(perms))
    # PermutationGroup moves the identity to row 0: carry the characters along
    order = np.array([group.index(row) for row in perms])
    reordered = np.empty_like(chi)
    reordered[order] = chi
    return cls(inner, group, reordered)


def symmetrized_to_netket(nk_cls: Any, model: Any) -> tuple[Any, dict]:
    """NetKet's `SymmExpSum` (in `netket.nn.blocks`; `nk_cls` is ignored) wrapping the NetKet
    twin of the model, with the same characters (`None` for the trivial ones)."""
    from netket.nn.blocks import SymmExpSum
    from netket.utils import HashableArray

    from .netket import to_netket

    inner, variables = to_netket(model.model)
    chi = np.asarray(model.characters)
    if not np.any(chi.imag):
        chi = chi.real
    characters = None if model.is_trivial else HashableArray(chi)
    module = SymmExpSum(
        module=inner, symm_group=_netket_group(model.symmetries), characters=characters
    )
    return module, {"module": variables["params"]}
