"""Converters of the RBM family (NetKet's RBM, RBMModPhase and RBMMultiVal).

NetKet's parameter trees: `RBM` has `Dense/kernel`, `Dense/bias` and `visible_bias`;
`RBMModPhase` has `Dense_0` (modulus) and `Dense_1` (phase), each with `kernel` and `bias`;
`RBMMultiVal` has an RBM's tree under `RBM`. The biases are absent when their flag is off.
"""

from typing import Any

from .. import hilbert as nqh, models as nqm
from ._activations import activation_from_netket, activation_to_netket
from ._params import hilbert_for, leading_size, nested, params_of, placeholders, with_params


_RBM_PATHS = {
    ("Dense", "kernel"): lambda m: m.kernel,
    ("Dense", "bias"): lambda m: m.hidden_bias,
    ("visible_bias",): lambda m: m.visible_bias,
}

#: Each model's parameter paths; the first is the kernel whose rows are the model's inputs.
_PATHS = {
    nqm.RBM: _RBM_PATHS,
    nqm.RBMModPhase: {
        ("Dense_0", "kernel"): lambda m: m.modulus_kernel,
        ("Dense_0", "bias"): lambda m: m.modulus_bias,
        ("Dense_1", "kernel"): lambda m: m.phase_kernel,
        ("Dense_1", "bias"): lambda m: m.phase_bias,
    },
    nqm.RBMMultiVal: nested(("RBM",), lambda m: m.rbm, _RBM_PATHS),
}


def _from_kwargs(module: Any) -> dict:
    """The nqzoo keyword arguments of an RBM-like NetKet module, with placeholder arrays."""
    visible = hasattr(module, "use_visible_bias")  # RBMModPhase has no visible bias
    kwargs = dict(
        alpha=module.alpha,
        use_hidden_bias=module.use_hidden_bias,
        activation=activation_from_netket(module.activation),
        param_dtype=module.param_dtype,
        **placeholders("kernel_init", "hidden_bias_init", *["visible_bias_init"] * visible),
    )
    if visible:
        kwargs["use_visible_bias"] = module.use_visible_bias
    return kwargs


def _to_kwargs(rbm: Any) -> dict:
    """NetKet's keyword arguments of an nqzoo `RBM`."""
    return dict(
        alpha=rbm.alpha,
        use_hidden_bias=rbm.hidden_bias is not None,
        use_visible_bias=rbm.visible_bias is not None,
        activation=activation_to_netket(rbm.activation),
        param_dtype=rbm.kernel.dtype,
    )


def rbm_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo `RBM` or `RBMModPhase` equal to NetKet's (Spin-1/2 unless `hilbert` is given)."""
    paths = _PATHS[cls]
    n_sites = leading_size(params, next(iter(paths)), module)
    hilbert = hilbert_for(hilbert, n_sites, lambda n: nqh.Spin(0.5, n), module)
    return with_params(cls(hilbert, **_from_kwargs(module)), params, paths, module)


def rbm_to_netket(nk_cls: type, model: Any) -> tuple[Any, dict]:
    """NetKet's `RBM` and its parameters, equal to an nqzoo `RBM`."""
    return nk_cls(**_to_kwargs(model)), params_of(model, _RBM_PATHS)


def modphase_to_netket(nk_cls: type, model: Any) -> tuple[Any, dict]:
    """NetKet's `RBMModPhase` and its parameters, equal to an nqzoo `RBMModPhase`."""
    module = nk_cls(
        alpha=model.alpha,
        use_hidden_bias=model.modulus_bias is not None,
        activation=activation_to_netket(model.activation),
        param_dtype=model.modulus_kernel.dtype,
    )
    return module, params_of(model, _PATHS[nqm.RBMModPhase])


def multival_from_netket(cls: type, module: Any, params: dict, hilbert: Any) -> Any:
    """An nqzoo `RBMMultiVal` equal to NetKet's (`Fock(n_classes - 1)` unless `hilbert` is
    given)."""
    paths, n_classes = _PATHS[cls], module.n_classes
    n_inputs = leading_size(params, next(iter(paths)), module)
    n_sites, rest = divmod(n_inputs, n_classes)
    if rest:
        raise ValueError(
            f"params/RBM/Dense/kernel has {n_inputs} rows, not a multiple of NetKet's "
            f"RBMMultiVal n_classes={n_classes} (one row per site and class)."
        )
    hilbert = hilbert_for(hilbert, n_sites, lambda n: nqh.Fock(n_classes - 1, n), module)
    if hilbert.local_size != n_classes:
        raise ValueError(
            f"NetKet's RBMMultiVal has n_classes={n_classes} but hilbert={hilbert!r} has "
            f"{hilbert.local_size} local states."
        )
    return with_params(cls(hilbert, **_from_kwargs(module)), params, paths, module)


def multival_to_netket(nk_cls: type, model: Any) -> tuple[Any, dict]:
    """NetKet's `RBMMultiVal` and its parameters, equal to an nqzoo `RBMMultiVal`."""
    module = nk_cls(n_classes=model.n_classes, **_to_kwargs(model.rbm))
    return module, params_of(model, _PATHS[nqm.RBMMultiVal])
