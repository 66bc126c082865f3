"""An opt-in pytest plugin: PRNG keys, float64 and strict promotion for JAX test suites.

Enable it in your `conftest.py` (top level of your tests):

```python
pytest_plugins = ["nqzoo.testing.pytest_plugin"]
```

Fixtures:

- `getkey`: `getkey()` hands out a fresh `jax.random.key` at each call (seeded 0, 1, 2, ...
  within each test, so every test is reproducible on its own).
- `x64`: runs the test with `jax_enable_x64` on (and restores the setting after it).
- `strict_promotion`: runs the test with `jax_numpy_dtype_promotion="strict"` and
  `jax_numpy_rank_promotion="raise"`, so that a float32 model silently computing in float64,
  an integer input promoted by accident, or a broadcast between mismatched ranks fails.

For a whole session, set them in the configuration (`pytest.ini`, or `[tool.pytest.ini_options]`
in `pyproject.toml`): `nqzoo_x64 = true`, `nqzoo_strict_promotion = true`, or on the command
line `--nqzoo-x64`, `--nqzoo-strict-promotion`. They are applied when pytest starts, before
the test modules are imported, as nqzoo's own test suite does.
"""

import jax
import pytest


def pytest_addoption(parser):
    group = parser.getgroup("nqzoo", "nqzoo.testing")
    group.addoption(
        "--nqzoo-x64",
        action="store_true",
        default=None,
        help="enable jax_enable_x64 for the whole session",
    )
    group.addoption(
        "--nqzoo-strict-promotion",
        action="store_true",
        default=None,
        help='jax_numpy_dtype_promotion="strict" and jax_numpy_rank_promotion="raise" for the '
        "whole session",
    )
    parser.addini("nqzoo_x64", "enable jax_enable_x64 for the whole session", type="bool")
    parser.addini(
        "nqzoo_strict_promotion",
        "strict dtype promotion and rank promotion raising for the whole session",
        type="bool",
    )


def _setting(config, name):
    option = config.getoption(f"--{name.replace('_', '-')}")
    return bool(option) if option is not None else bool(config.getini(name))


def pytest_configure(config):
    if _setting(config, "nqzoo_x64"):
        jax.config.update("jax_enable_x64", True)
    if _setting(config, "nqzoo_strict_promotion"):
        jax.config.update("jax_numpy_dtype_promotion", "strict")
        jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def getkey():
    """`getkey()` gives a new PRNG key at each call: `jax.random.key(0)`, `key(1)`, ..."""
    counter = iter(range(2**31))

    def _getkey():
        return jax.random.key(next(counter))

    return _getkey


# The fixtures below enter their context and leave it in a finalizer rather than by `yield`:
# the package's import hook wraps every function of nqzoo, and a wrapped generator function
# is no longer one, which pytest would take for a fixture returning a generator.


def _within(request, *contexts) -> None:
    for context in contexts:
        context.__enter__()
        request.addfinalizer(lambda context=context: context.__exit__(None, None, None))


@pytest.fixture
def x64(request):
    """Run the test with float64 enabled (`jax_enable_x64`)."""
    _within(request, jax.enable_x64(True))


@pytest.fixture
def strict_promotion(request):
    """Run the test with strict dtype promotion and rank promotion raising."""
    _within(request, jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"))
