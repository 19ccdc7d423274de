"""The op registry and its families; importing this package registers every op."""

# Each family module registers its ops when imported; the order only matters for imports.
from poseir.ops import (conv, core, dropout, elementwise, index, join, linear, losses, norm, rearrange,  # noqa: F401
                        reduce, reshape, shape, sizes)
