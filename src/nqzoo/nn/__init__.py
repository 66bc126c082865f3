"""Building blocks: activations, initialisers and (masked) layers."""

from . import initializers as initializers
from ._activations import gelu as gelu, log_cosh as log_cosh, reim_selu as reim_selu
