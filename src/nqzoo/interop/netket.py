"""Two-way conversion between NetKet (Flax) models and nqzoo models.

```python
from nqzoo.interop.netket import from_netket, to_netket

model = from_netket(nk_module, nk_variables)          # Fast* models give (model, state)
nk_module, nk_variables = to_netket(model)
```

Conversions copy parameters exactly (bit for bit), so `model(x)` equals
`nk_module.apply(nk_variables, x)` up to floating-point summation order.
Requires the optional `netket` extra (`pip install "nqzoo[netket]"`).
"""

from typing import Any

# Importing the family modules registers their converters.
from . import _autoreg, _deepset, _mlp, _rbm  # noqa: F401
from ._hilbert import (
    hilbert_from_netket as hilbert_from_netket,
    hilbert_to_netket as hilbert_to_netket,
)
from ._registry import FROM_NETKET, TO_NETKET


__all__ = ["from_netket", "to_netket", "hilbert_from_netket", "hilbert_to_netket"]


def from_netket(module: Any, variables: dict, *, hilbert: Any = None) -> Any:
    """Build the nqzoo model equal to a NetKet module with the given variables.

    **Arguments:**

    - `module`: a NetKet model instance (e.g. `nk.models.RBM(alpha=2)`).
    - `variables`: its variables, `{"params": …}` as returned by `module.init` (a NetKet
      `MCState.variables` works too; a `"cache"` collection is ignored).
    - `hilbert`: the nqzoo Hilbert space, needed only for models that do not record one in
      NetKet (RBM, RBMModPhase, MLP, DeepSetMLP). When omitted it is inferred from the
      parameter shapes: Spin-1/2 for RBM/RBMModPhase/MLP and `Fock(n_classes - 1)` for
      RBMMultiVal. Models that store a NetKet Hilbert space (ARNNs, DeepSetRelDistance)
      convert that one.

    **Returns:** the nqzoo model; for `Fast*` autoregressive models, `(model, state)`.
    """
    name = type(module).__name__
    try:
        convert = FROM_NETKET[name]
    except KeyError:
        raise TypeError(
            f"from_netket does not know NetKet's {name}; supported: {sorted(FROM_NETKET)}."
        ) from None
    params = variables["params"] if "params" in variables else variables
    params = _unfreeze(params)
    if hilbert is None and getattr(module, "hilbert", None) is not None:
        hilbert = hilbert_from_netket(module.hilbert)
    return convert(module, params, hilbert)


def to_netket(model: Any) -> tuple[Any, dict]:
    """The NetKet module and variables (`{"params": …}`) equal to an nqzoo model.

    **Arguments:**

    - `model`: an nqzoo model.

    **Returns:** `(nk_module, variables)` such that `nk_module.apply(variables, x)` equals
    `model(x)`.
    """
    try:
        convert = TO_NETKET[type(model)]
    except KeyError:
        known = sorted(cls.__name__ for cls in TO_NETKET)
        raise TypeError(
            f"to_netket does not know {type(model).__name__}; supported: {known}."
        ) from None
    module, params = convert(model)
    return module, {"params": params}


def _unfreeze(tree: Any) -> Any:
    if hasattr(tree, "items"):
        return {k: _unfreeze(v) for k, v in tree.items()}
    return tree
