"""Markov-chain Monte Carlo: Metropolis-Hastings samplers for any model, and statistics."""
