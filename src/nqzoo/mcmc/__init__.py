"""Markov-chain Monte Carlo: Metropolis-Hastings samplers for any model, and statistics."""

from ._rules import (
    AbstractRule as AbstractRule,
    ExchangeRule as ExchangeRule,
    GaussianRule as GaussianRule,
    LocalRule as LocalRule,
)
from ._sampler import (
    ChainState as ChainState,
    MetropolisExchange as MetropolisExchange,
    MetropolisGaussian as MetropolisGaussian,
    MetropolisLocal as MetropolisLocal,
    MetropolisSampler as MetropolisSampler,
    SampleInfo as SampleInfo,
)
from ._stats import MIN_BATCHES as MIN_BATCHES, statistics as statistics, Stats as Stats
