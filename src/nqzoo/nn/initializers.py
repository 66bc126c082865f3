"""NetKet-compatible initialisers (see `nqzoo.nn._initializers`)."""

from ._initializers import (
    lecun_normal as lecun_normal,
    normal as normal,
    ones as ones,
    zeros as zeros,
)
