"""Activations that NetKet and nqzoo both provide, mapped onto each other by the converters.

NetKet modules store their activation functions (NetKet's `log_cosh`, `jax.nn.gelu`, …); an
nqzoo model built from one should use nqzoo's own function (so that it runs without NetKet and
takes nqzoo's fast paths), and the reverse conversion should give NetKet's function back, so
that round trips return equal modules. Activations not in the table are passed through as is.
"""

from typing import Any

import jax

from ..nn import _activations as nqa


def _pairs() -> list[tuple[Any, Any]]:
    import netket as nk

    return [
        (nk.nn.activation.log_cosh, nqa.log_cosh),
        (nk.nn.activation.reim_selu, nqa.reim_selu),
        (jax.nn.gelu, nqa.gelu),
    ]


def activation_from_netket(fn: Any) -> Any:
    """nqzoo's equivalent of a NetKet activation (or `fn` itself if there is none)."""
    for nk_fn, nq_fn in _pairs():
        if fn is nk_fn:
            return nq_fn
    return fn


def activation_to_netket(fn: Any) -> Any:
    """NetKet's equivalent of an nqzoo activation (or `fn` itself if there is none)."""
    for nk_fn, nq_fn in _pairs():
        if fn is nq_fn:
            return nk_fn
    return fn


def activations_from_netket(spec: Any) -> Any:
    """Map a callable, a tuple of callables/None, or None."""
    if isinstance(spec, tuple | list):
        return tuple(activation_from_netket(f) for f in spec)
    return activation_from_netket(spec)


def activations_to_netket(spec: Any) -> Any:
    """Map a callable, a tuple of callables/None, or None."""
    if isinstance(spec, tuple | list):
        return tuple(activation_to_netket(f) for f in spec)
    return activation_to_netket(spec)
