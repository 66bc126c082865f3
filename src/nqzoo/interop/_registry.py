"""Registry of converters between NetKet modules and nqzoo models.

Each model family registers, in its own private module, a pair of functions:

- `from_nk(module, params, hilbert) -> model | (model, state)` where `params` is the NetKet
  `variables["params"]` dict and `hilbert` is an nqzoo Hilbert space or None;
- `to_nk(model) -> (netket_module, params)`.
"""

from collections.abc import Callable
from typing import Any


FromNetKet = Callable[[Any, dict, Any], Any]
ToNetKet = Callable[[Any], tuple[Any, dict]]

#: NetKet class name -> converter into nqzoo.
FROM_NETKET: dict[str, FromNetKet] = {}
#: nqzoo class -> converter into NetKet.
TO_NETKET: dict[type, ToNetKet] = {}


def register(netket_name: str, nqzoo_cls: type, from_nk: FromNetKet, to_nk: ToNetKet) -> None:
    """Register the two converters of one model."""
    FROM_NETKET[netket_name] = from_nk
    TO_NETKET[nqzoo_cls] = to_nk
