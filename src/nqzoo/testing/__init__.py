r"""Property checks for wave functions, for your own pytest suite (and nqzoo's).

```python
import nqzoo.testing as nqt
```

One function per property; each raises an `AssertionError` whose message says what failed,
where (the site, configuration or group element) and by how much, so it reads well in a
pytest report, and each has keyword tolerances with documented defaults that depend on the
precision of the model (float64 or float32, real or complex):

- [`assert_normalized`][nqzoo.testing.assert_normalized]: $\sum_x |\psi(x)|^p = 1$;
- [`assert_autoregressive`][nqzoo.testing.assert_autoregressive]: conditionals depend only
  on earlier sites, in the model's order;
- [`assert_fast_matches_slow`][nqzoo.testing.assert_fast_matches_slow]: a fast model's
  steps give the slow conditionals;
- [`assert_samples_match`][nqzoo.testing.assert_samples_match],
  [`assert_exact_sampling`][nqzoo.testing.assert_exact_sampling],
  [`assert_mcmc_samples_match`][nqzoo.testing.assert_mcmc_samples_match],
  [`sampler_chi2`][nqzoo.testing.sampler_chi2], [`chi2_test`][nqzoo.testing.chi2_test]:
  samples against exact $|\psi|^p$ (Pearson's chi-squared);
- [`assert_symmetric`][nqzoo.testing.assert_symmetric]: $\psi(gx) = \chi_g\psi(x)$;
- [`assert_shape_checked`][nqzoo.testing.assert_shape_checked]: a wrong input width is
  refused with an error naming the axis;
- [`assert_netket_parity`][nqzoo.testing.assert_netket_parity]: the same $\log\psi$ as a
  NetKet module (skips the test when NetKet is missing).

Importing this module needs neither pytest nor NetKet. The opt-in pytest plugin
`nqzoo.testing.pytest_plugin` adds fixtures (`getkey`, `x64`, `strict_promotion`) and
options: see the page "Testing your own models".
"""

from ._checks import (
    assert_autoregressive as assert_autoregressive,
    assert_fast_matches_slow as assert_fast_matches_slow,
    assert_normalized as assert_normalized,
    assert_shape_checked as assert_shape_checked,
    assert_symmetric as assert_symmetric,
)
from ._netket import (
    assert_netket_parity as assert_netket_parity,
    require_netket as require_netket,
)
from ._sampling import (
    ALPHA as ALPHA,
    assert_exact_sampling as assert_exact_sampling,
    assert_mcmc_samples_match as assert_mcmc_samples_match,
    assert_samples_match as assert_samples_match,
    chi2_test as chi2_test,
    Chi2Result as Chi2Result,
    histogram as histogram,
    sampler_chi2 as sampler_chi2,
)
