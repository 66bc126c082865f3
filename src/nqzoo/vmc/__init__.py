"""Variational Monte Carlo estimators: the energy, its gradient and the natural gradient
(stochastic reconfiguration, in the parameter-space and the sample-space form)."""

from ._estimators import energy_and_grad as energy_and_grad, EstimatorInfo as EstimatorInfo
from ._sr import natural_gradient as natural_gradient
