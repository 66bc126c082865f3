"""The activations NetKet and nqzoo both provide, mapped onto each other by every converter.

NetKet modules store their activation functions (NetKet's `log_cosh`, `jax.nn.gelu`, ...); an
nqzoo model built from one uses nqzoo's own function (so that it runs without NetKet and takes
nqzoo's fast paths), and the reverse conversion gives NetKet's function back, so that round
trips return equal modules. Activations not in the table (`jnp.tanh`, `None`, ...) are kept.
"""

from typing import Any

import jax

from .. import nn as nqn


def _pairs() -> tuple[tuple[Any, Any], ...]:
    """(NetKet's function, nqzoo's function) for every activation both provide."""
    import netket as nk

    return (
        (nk.nn.activation.log_cosh, nqn.log_cosh),
        (nk.nn.activation.reim_selu, nqn.reim_selu),
        (jax.nn.gelu, nqn.gelu),
    )


def _map(spec: Any, source: int) -> Any:
    if isinstance(spec, tuple | list):
        return tuple(_map(fn, source) for fn in spec)
    for pair in _pairs():
        if spec is pair[source]:
            return pair[1 - source]
    return spec


def activation_from_netket(spec: Any) -> Any:
    """nqzoo's equivalent of a NetKet activation, or of each entry of a tuple of them
    (entries without an equivalent, `None` included, are kept)."""
    return _map(spec, 0)


def activation_to_netket(spec: Any) -> Any:
    """NetKet's equivalent of an nqzoo activation, or of each entry of a tuple of them."""
    return _map(spec, 1)
