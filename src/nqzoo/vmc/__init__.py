"""Variational Monte Carlo estimators: the energy, its gradient and the natural gradient."""

from ._estimators import energy_and_grad as energy_and_grad, natural_gradient as natural_gradient
