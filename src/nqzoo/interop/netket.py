"""Two-way conversion between NetKet (Flax) models and nqzoo models.

```python
from nqzoo.interop.netket import from_netket, to_netket

model = from_netket(nk_module, nk_variables)          # Fast* models give (model, state)
nk_module, nk_variables = to_netket(model)
```

Conversions copy parameters exactly (bit for bit), so `model(x)` equals
`nk_module.apply(nk_variables, x)` up to floating-point summation order. They are strict:
variables that do not match the module (a missing or extra parameter, a wrong shape or dtype)
are refused with an error naming the parameter. Requires the optional `netket` extra.

NetKet's discrete operators become nqzoo operators with `operator_from_netket` (through their
JAX form), and NetKet's `MCState` and drivers sample autoregressive models through
`nqz.sample` with `NqzooARSampler`. Importing this module also makes NetKet's
`ARDirectSampler` refuse an nqzoo model with a message naming `NqzooARSampler`.
"""

from typing import Any

from .. import hilbert as nqh, models as nqm
from ._autoreg import arnn_from_netket, arnn_to_netket
from ._deepset import (
    deepset_mlp_from_netket,
    deepset_mlp_to_netket,
    reldist_from_netket,
    reldist_to_netket,
)
from ._gcnn import gcnn_from_netket, gcnn_to_netket
from ._groups import (
    group_from_netket as group_from_netket,
    group_to_netket as group_to_netket,
)
from ._hilbert import (
    hilbert_from_netket as hilbert_from_netket,
    hilbert_to_netket as hilbert_to_netket,
)
from ._mlp import mlp_from_netket, mlp_to_netket
from ._operator import (
    NetKetOperator as NetKetOperator,
    operator_from_netket as operator_from_netket,
)
from ._rbm import (
    modphase_to_netket,
    multival_from_netket,
    multival_to_netket,
    rbm_from_netket,
    rbm_to_netket,
)
from ._rnn import rnn_from_netket, rnn_to_netket
from ._sampler import (
    NqzooARSampler as NqzooARSampler,
    NqzooARSamplerState as NqzooARSamplerState,
)
from ._symmetric import (
    jastrow_from_netket,
    jastrow_to_netket,
    mps_from_netket,
    mps_to_netket,
    rbm_symm_from_netket,
    rbm_symm_to_netket,
    symmetrized_from_netket,
    symmetrized_to_netket,
)


__all__ = [
    "from_netket",
    "to_netket",
    "hilbert_from_netket",
    "hilbert_to_netket",
    "group_from_netket",
    "group_to_netket",
    "operator_from_netket",
    "NetKetOperator",
    "NqzooARSampler",
    "NqzooARSamplerState",
]

#: NetKet class name (in `netket.models`) -> (nqzoo class, from NetKet, to NetKet), where
#: `from_fn(nqzoo_cls, module, params, hilbert)` builds the nqzoo model (`hilbert` is an nqzoo
#: space or None) and `to_fn(netket_cls, model)` gives `(module, params)`.
_CONVERTERS = {
    "RBM": (nqm.RBM, rbm_from_netket, rbm_to_netket),
    "RBMModPhase": (nqm.RBMModPhase, rbm_from_netket, modphase_to_netket),
    "RBMMultiVal": (nqm.RBMMultiVal, multival_from_netket, multival_to_netket),
    "Jastrow": (nqm.Jastrow, jastrow_from_netket, jastrow_to_netket),
    "RBMSymm": (nqm.RBMSymm, rbm_symm_from_netket, rbm_symm_to_netket),
    # both GCNN forms are nqzoo.models.GCNN (its mode picks the form on the way back)
    "GCNN_FFT": (nqm.GCNN, gcnn_from_netket, gcnn_to_netket),
    "GCNN_Irrep": (nqm.GCNN, gcnn_from_netket, gcnn_to_netket),
    # NetKet's MPS live in netket.models.tensor_networks, SymmExpSum in netket.nn.blocks
    "MPSOpen": (nqm.MPSOpen, mps_from_netket, mps_to_netket),
    "MPSPeriodic": (nqm.MPSPeriodic, mps_from_netket, mps_to_netket),
    "SymmExpSum": (nqm.Symmetrized, symmetrized_from_netket, symmetrized_to_netket),
    "MLP": (nqm.MLP, mlp_from_netket, mlp_to_netket),
    "DeepSetMLP": (nqm.DeepSetMLP, deepset_mlp_from_netket, deepset_mlp_to_netket),
    "DeepSetRelDistance": (nqm.DeepSetRelDistance, reldist_from_netket, reldist_to_netket),
    "ARNNDense": (nqm.ARNNDense, arnn_from_netket, arnn_to_netket),
    "ARNNConv1D": (nqm.ARNNConv1D, arnn_from_netket, arnn_to_netket),
    "ARNNConv2D": (nqm.ARNNConv2D, arnn_from_netket, arnn_to_netket),
    "FastARNNDense": (nqm.FastARNNDense, arnn_from_netket, arnn_to_netket),
    "FastARNNConv1D": (nqm.FastARNNConv1D, arnn_from_netket, arnn_to_netket),
    "FastARNNConv2D": (nqm.FastARNNConv2D, arnn_from_netket, arnn_to_netket),
    # recurrent networks: NetKet's live in netket.experimental.models (SimpleRNNNet and
    # FastSimpleRNNNet, of plain cells, in nqzoo.interop._rnn); rnn_to_netket finds the class
    "LSTMNet": (nqm.LSTMNet, rnn_from_netket, rnn_to_netket),
    "GRUNet1D": (nqm.GRUNet1D, rnn_from_netket, rnn_to_netket),
    "SimpleRNNNet": (nqm.RNN, rnn_from_netket, rnn_to_netket),
    "FastLSTMNet": (nqm.FastLSTMNet, rnn_from_netket, rnn_to_netket),
    "FastGRUNet1D": (nqm.FastGRUNet1D, rnn_from_netket, rnn_to_netket),
    "FastSimpleRNNNet": (nqm.FastRNN, rnn_from_netket, rnn_to_netket),
}


def from_netket(module: Any, variables: Any, *, hilbert: Any = None) -> Any:
    """Build the nqzoo model equal to a NetKet module with the given variables.

    **Arguments:**

    - `module`: a NetKet model instance (e.g. `nk.models.RBM(alpha=2)`); its hyperparameters
      (flags such as `use_visible_bias`, widths, `param_dtype`) define the model.
    - `variables`: its variables, `{"params": ...}` as returned by `module.init` (a NetKet
      `MCState.variables` works too; other collections such as `"cache"` are ignored). They
      must be exactly the module's parameters, with its shapes and `param_dtype`.
    - `hilbert`: the Hilbert space, an nqzoo space or a NetKet one (converted with
      [`nqzoo.interop.netket.hilbert_from_netket`][]). It is needed only for models that do
      not record one in NetKet (RBM, RBMModPhase, RBMMultiVal, MLP); when omitted it is
      inferred from the parameter shapes: Spin-1/2 for RBM/RBMModPhase/MLP and
      `Fock(n_classes - 1)` for RBMMultiVal. Models that record their space (ARNNs,
      DeepSetRelDistance) convert that one, and a `hilbert` given too must equal it.

    **Returns:** the nqzoo model; for `Fast*` autoregressive models, `(model, state)`.

    **Raises:** `TypeError` for a module nqzoo has no model for; `ValueError` naming the
    parameter path (e.g. `params/visible_bias`) when the variables do not match the module,
    and for a `hilbert` that does not fit.
    """
    name = type(module).__name__
    if name not in _CONVERTERS:
        raise TypeError(
            f"from_netket has no nqzoo model for NetKet's {name}; supported: "
            f"{sorted(_CONVERTERS)}."
        )
    if not hasattr(variables, "items"):
        raise TypeError(
            "variables must be a dict of NetKet variables such as {'params': ...}, got "
            f"variables={variables!r}."
        )
    cls, convert, _ = _CONVERTERS[name]
    params = _unfreeze(variables["params"] if "params" in variables else variables)
    return convert(cls, module, params, _hilbert(module, hilbert))


def to_netket(model: Any) -> tuple[Any, dict]:
    """The NetKet module and variables (`{"params": ...}`) equal to an nqzoo model.

    **Arguments:**

    - `model`: an nqzoo model (a fast autoregressive model converts to NetKet's Fast* twin).

    **Returns:** `(nk_module, variables)` such that `nk_module.apply(variables, x)` equals
    `model(x)`.

    **Raises:** `TypeError` for a model without a NetKet twin; `ValueError` for an
    autoregressive model on a constrained space (`total_sz`, `n_particles`): NetKet's
    autoregressive models do not mask their conditionals, so the converted module would give
    another wavefunction.
    """
    import netket as nk

    if isinstance(model, nqm.AbstractARNN) and model.hilbert.constrained:
        raise ValueError(
            f"to_netket cannot convert {type(model).__name__} on the constrained space "
            f"{model.hilbert!r}: NetKet's autoregressive models do not enforce the constraint "
            "(their log psi would differ). Convert a model built on the unconstrained space, "
            "or sample it in NetKet with nqzoo.interop.netket.NqzooARSampler."
        )
    for name, (cls, _, convert) in _CONVERTERS.items():
        if type(model) is cls:
            module, params = convert(getattr(nk.models, name, None), model)
            return module, {"params": params}
    known = sorted(cls.__name__ for cls, _, _ in _CONVERTERS.values())
    raise TypeError(f"to_netket does not know {type(model).__name__}; supported: {known}.")


def _hilbert(module: Any, hilbert: Any) -> Any:
    """The nqzoo space a converter builds on: `hilbert` (converted from NetKet if need be) or
    the one the module records, which must then agree."""
    import netket as nk

    if isinstance(hilbert, nk.hilbert.AbstractHilbert):
        hilbert = hilbert_from_netket(hilbert)
    elif hilbert is not None and not isinstance(hilbert, nqh.AbstractHilbert):
        raise TypeError(
            f"hilbert must be an nqzoo or a NetKet Hilbert space, got hilbert={hilbert!r}."
        )
    recorded = getattr(module, "hilbert", None)
    if recorded is None:
        return hilbert
    recorded = hilbert_from_netket(recorded)
    if hilbert is not None and hilbert != recorded:
        raise ValueError(
            f"hilbert={hilbert!r} differs from the space NetKet's {type(module).__name__} "
            f"records, {recorded!r}; omit hilbert (the recorded one is converted) or pass it."
        )
    return recorded


def _unfreeze(tree: Any) -> Any:
    if hasattr(tree, "items"):
        return {k: _unfreeze(v) for k, v in tree.items()}
    return tree
