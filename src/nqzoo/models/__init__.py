"""Neural-network quantum states."""

from ._rbm import RBM as RBM
from ._deepset import DeepSetMLP as DeepSetMLP, DeepSetRelDistance as DeepSetRelDistance
from ._autoreg import (
    AbstractARNN as AbstractARNN,
    AbstractFastARNN as AbstractFastARNN,
    normalize_log_conditionals as normalize_log_conditionals,
)
