"""pytest plugin: scipy's own logsumexp / softmax / log_softmax tests, run on headstart's.

Loaded by tests/test_peer_suites.py in a subprocess (``-p hs_as_scipy``) before scipy's
test module is imported, so its ``from scipy.special import logsumexp, ...`` picks up
headstart's functions. Nothing of scipy's is copied: the tests are read from the
installed scipy at run time.
"""

import headstart as hs
import scipy.special as sp
from scipy._lib import _array_api as aa

for _name in ("logsumexp", "softmax", "log_softmax"):
    _theirs, _ours = getattr(sp, _name), getattr(hs, _name)
    # scipy's test decorators look each function up in its capabilities table
    aa.xp_capabilities_table[_ours] = aa.xp_capabilities_table[_theirs]
    setattr(sp, _name, _ours)


def _complex(item):
    """headstart takes real input only (complex raises TypeError, as documented): the
    cases feeding complex arrays or complex dtypes are deselected."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    for v in params.values():
        for u in v if isinstance(v, (tuple, list)) else (v,):
            if isinstance(u, complex) or "complex" in str(u):
                return True
    # complex-only tests without a complex parameter
    return item.originalname in ("test_gh21709_small_imaginary", "test_logsumexp_complex_sign")


def pytest_collection_modifyitems(config, items):
    keep = [i for i in items if not _complex(i)]
    gone = [i for i in items if _complex(i)]
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = keep

