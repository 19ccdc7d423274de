"""The op registry and its families; importing this package registers every op."""

# Each family module registers its ops when imported; the order only matters for imports.
from poseir.ops import (compare, conv, core, dropout, elementwise, index, join, linear, losses,  # noqa: F401
                        norm, rearrange, reduce, reshape, shape, sizes)
