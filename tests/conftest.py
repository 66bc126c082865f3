import gc

import jax
import pytest


# As Equinox's and lineax's test suites: float64, and no implicit dtype or rank promotion, so
# that a model that silently promotes (a float32 model computing in float64, an int input
# promoted by accident, a broadcast between mismatched ranks) fails its tests.
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def getkey():
    """Hands out fresh PRNG keys: `getkey()` gives a new one each call."""
    counter = iter(range(10**9))

    def _getkey():
        return jax.random.key(next(counter))

    return _getkey


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables and traces after each test module. A pytest-xdist
    worker runs many modules in one process; keeping every module's executables grew a
    worker to 6 GB, and two full runs ended with a worker dying inside XLA (an abort while
    compiling, a segmentation fault) late in the run. Modules share little compiled code."""
    yield
    jax.clear_caches()
    gc.collect()
