"""Building blocks: activations, initialisers and (masked) layers."""

from . import initializers as initializers
from ._activations import gelu as gelu, log_cosh as log_cosh, reim_selu as reim_selu
from ._fast_masked import (
    FastMaskedConv1D as FastMaskedConv1D,
    FastMaskedConv2D as FastMaskedConv2D,
    FastMaskedDense1D as FastMaskedDense1D,
)
from ._masked import (
    MaskedConv1D as MaskedConv1D,
    MaskedConv2D as MaskedConv2D,
    MaskedDense1D as MaskedDense1D,
)
