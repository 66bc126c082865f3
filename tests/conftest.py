import jax
import pytest


jax.config.update("jax_enable_x64", True)


@pytest.fixture
def getkey():
    """Hands out fresh PRNG keys: `getkey()` gives a new one each call."""
    counter = iter(range(10**9))

    def _getkey():
        return jax.random.key(next(counter))

    return _getkey
