"""Graph convolutions on torch: spectral (eigenbasis), Laplacian polynomial and adjacency (GCN) forms.

Node features X have shape (..., nodes, in_chs); the weight is stored (out_chs, in_chs) as Dense stores it. The
graph matrices are constants: buffers that are neither trained nor exported with the weights.
"""

from __future__ import annotations

import numpy as np
import torch

from nebulae.astro import init as _init
from nebulae.astro.args import check_float_input
from nebulae.astro.graphinit import filter_weights

from .craft import Craft
from .legacy import parameter

__all__ = ["GraphConvEig", "GraphConvLap", "GraphConvAdj"]


def graph_matrix(matrix, what: str, square: bool = True) -> np.ndarray:
    """A dense float32 NumPy copy of a graph matrix (NumPy array, or torch tensor dense or sparse)."""
    if isinstance(matrix, torch.Tensor):
        matrix = (matrix.to_dense() if matrix.is_sparse else matrix).detach().cpu().numpy()
    array = np.asarray(matrix)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{what} must be a 2-D numeric matrix (a dense NumPy array), got {type(matrix).__name__}")
    if square and array.shape[0] != array.shape[1]:
        raise ValueError(f"{what} must be square (nodes x nodes), got shape {array.shape}")
    return array.astype(np.float32)


class _GraphConv(Craft):
    def _linear(self, in_chs: int, out_chs: int, w_init) -> None:
        self.weight = parameter(_init.make(_init.XavierNorm() if w_init is None else w_init, (out_chs, in_chs)))

    def _bias(self, out_chs: int, b_init) -> None:
        self.bias = parameter(_init.make(_init.Zeros() if b_init is None else b_init, (out_chs,)))

    def _finish(self, y):
        return y if self.bias is None else y + self.bias

    def weights(self):
        return self.weight


class GraphConvEig(_GraphConv):
    """Spectral graph convolution U diag(theta) U^T (X W^T) + b with a learnable filter `theta` over the given
    eigenvector basis `eigm` U (nodes, k)."""

    def __init__(self, in_chs: int, out_chs: int, eigm, w_init=None, b_init=None, scope: str = "GRAPHCONVEIG"):
        super().__init__(scope)
        basis = graph_matrix(eigm, "GraphConvEig eigm", square=False)
        self._linear(in_chs, out_chs, w_init)
        self.theta = parameter(filter_weights(w_init, basis.shape[1]))
        self._bias(out_chs, b_init)
        self.register_buffer("eigm", torch.from_numpy(basis), persistent=False)

    def run(self, x):
        check_float_input(x.is_floating_point(), x.dtype, type(self).__name__)
        support = torch.matmul(x, self.weight.t())
        spectral = torch.matmul(self.eigm.t(), support) * self.theta[:, None]
        return self._finish(torch.matmul(self.eigm, spectral))


class GraphConvLap(_GraphConv):
    """Polynomial graph convolution (sum_{k < order} theta_k L^k)(X W^T) + b over the Laplacian `lap` (nodes, nodes)."""

    def __init__(
        self, order: int, in_chs: int, out_chs: int, lap, w_init=None, b_init=None, scope: str = "GRAPHCONVLAP"
    ):
        super().__init__(scope)
        if order < 1:
            raise ValueError(f"GraphConvLap order must be >= 1, got {order}")
        lap = graph_matrix(lap, "GraphConvLap lap").astype(np.float64)
        powers = [np.eye(lap.shape[0])]
        for _ in range(order - 1):
            powers.append(powers[-1] @ lap)
        self._linear(in_chs, out_chs, w_init)
        self.theta = parameter(filter_weights(w_init, order))
        self._bias(out_chs, b_init)
        self.register_buffer("powers", torch.from_numpy(np.stack(powers).astype(np.float32)), persistent=False)

    def run(self, x):
        check_float_input(x.is_floating_point(), x.dtype, type(self).__name__)
        support = torch.matmul(x, self.weight.t())
        return self._finish(torch.matmul(torch.tensordot(self.theta, self.powers, 1), support))


class GraphConvAdj(_GraphConv):
    """Graph convolution (GCN) A (X W^T) + b with a fixed adjacency `adj` (nodes, nodes): a dense NumPy array, or on
    torch also a sparse tensor (multiplied sparsely)."""

    def __init__(self, in_chs: int, out_chs: int, adj, w_init=None, b_init=None, scope: str = "GRAPHCONVADJ"):
        super().__init__(scope)
        if isinstance(adj, torch.Tensor) and adj.is_sparse:
            if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
                raise ValueError(f"GraphConvAdj adj must be square (nodes x nodes), got shape {tuple(adj.shape)}")
            matrix = adj.detach().coalesce().to(torch.float32)
        else:
            matrix = torch.from_numpy(graph_matrix(adj, "GraphConvAdj adj"))
        self.sparse = matrix.is_sparse
        self._linear(in_chs, out_chs, w_init)
        self._bias(out_chs, b_init)
        self.register_buffer("adj", matrix, persistent=False)

    def run(self, x):
        check_float_input(x.is_floating_point(), x.dtype, type(self).__name__)
        support = torch.matmul(x, self.weight.t())
        if not self.sparse:
            return self._finish(torch.matmul(self.adj, support))
        if support.ndim == 2:
            return self._finish(torch.sparse.mm(self.adj, support))
        moved = support.movedim(-2, 0)
        y = torch.sparse.mm(self.adj, moved.reshape(moved.shape[0], -1)).reshape(moved.shape)
        return self._finish(y.movedim(0, -2))
