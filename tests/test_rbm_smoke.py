import jax
import jax.numpy as jnp
import netket as nk
import pytest

import nqzoo as nqz
from nqzoo.interop.netket import from_netket, to_netket

from .helpers import max_rel_err, randomize


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_rbm_parity(dtype, getkey):
    hi = nqz.hilbert.Spin(0.5, 8)
    nk_model = nk.models.RBM(alpha=2, param_dtype=dtype)
    x = hi.random_state(getkey(), 16)
    params = randomize(nk_model.init(getkey(), x)["params"], getkey())
    model = from_netket(nk_model, {"params": params}, hilbert=hi)
    expected = nk_model.apply({"params": params}, x)
    assert max_rel_err(jnp.exp(model(x)), jnp.exp(expected)) < 1e-12
    nk_back, variables = to_netket(model)
    assert max_rel_err(nk_back.apply(variables, x), expected) == 0.0
