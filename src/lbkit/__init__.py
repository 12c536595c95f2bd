"""lbkit: load-balancing primitives for proxies, L4 balancers, meshes and queueing front ends.

The compiled kernels are used when they were built; ``IMPLEMENTATION`` says which path runs.

>>> import lbkit
>>> lbkit.IMPLEMENTATION in ("cython", "python")
True
"""

from lbkit._kernels import FALLBACK_REASON, IMPLEMENTATION
from lbkit._version import __version__
from lbkit.hashing import bucket_index, flow_key, hash_flow, hash_key, hash_many, hash_packed

__all__ = [
    "FALLBACK_REASON",
    "IMPLEMENTATION",
    "__version__",
    "bucket_index",
    "flow_key",
    "hash_flow",
    "hash_key",
    "hash_many",
    "hash_packed",
]
