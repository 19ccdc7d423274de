"""The op registry and its families; importing this package registers every op."""

# Each family module registers its ops when imported; the order only matters for imports.
from poseir.ops import core, elementwise, index, losses, nn, rearrange, reduce, shape  # noqa: F401
