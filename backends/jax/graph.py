"""Graph convolutions on JAX: spectral (eigenbasis), Laplacian polynomial and adjacency (GCN) forms.

Node features X have shape (..., nodes, in_chs); the weight is stored (out_chs, in_chs) as Dense stores it. The
graph matrices are constants: buffers that are neither trained nor exported with the weights.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse

from nebulae.astro import init as _init
from nebulae.astro.args import check_float_input
from nebulae.astro.graphinit import filter_weights

from .craft import Craft
from .legacy import FixedWeight, parameter

__all__ = ["GraphConvEig", "GraphConvLap", "GraphConvAdj"]


def graph_matrix(matrix, what: str, square: bool = True) -> np.ndarray:
    """A dense float32 NumPy copy of a graph matrix (NumPy or JAX array, or a jax.experimental.sparse.BCOO)."""
    if isinstance(matrix, sparse.BCOO):
        matrix = matrix.todense()
    array = np.asarray(matrix)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"{what} must be a 2-D numeric matrix (a dense NumPy array, or a jax.experimental.sparse.BCOO),"
            f" got {type(matrix).__name__}"
        )
    if square and array.shape[0] != array.shape[1]:
        raise ValueError(f"{what} must be square (nodes x nodes), got shape {array.shape}")
    return array.astype(np.float32)


class _GraphConv(Craft):
    def _linear(self, in_chs: int, out_chs: int, w_init) -> None:
        self.weight = parameter(_init.make(_init.XavierNorm() if w_init is None else w_init, (out_chs, in_chs)))

    def _bias(self, out_chs: int, b_init) -> None:
        self.bias = parameter(_init.make(_init.Zeros() if b_init is None else b_init, (out_chs,)))

    def _support(self, x):
        return x @ self.weight.get_value().astype(x.dtype).T

    def _finish(self, y):
        return y if self.bias is None else y + self.bias.get_value().astype(y.dtype)

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
        self.eigm = FixedWeight(jnp.asarray(basis))

    def run(self, x):
        check_float_input(jnp.issubdtype(x.dtype, jnp.floating), x.dtype, type(self).__name__)
        u = self.eigm.get_value().astype(x.dtype)
        spectral = (u.T @ self._support(x)) * self.theta.get_value().astype(x.dtype)[:, None]
        return self._finish(u @ spectral)


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
        self.powers = FixedWeight(jnp.asarray(np.stack(powers).astype(np.float32)))

    def run(self, x):
        check_float_input(jnp.issubdtype(x.dtype, jnp.floating), x.dtype, type(self).__name__)
        theta, powers = self.theta.get_value().astype(x.dtype), self.powers.get_value().astype(x.dtype)
        return self._finish(jnp.tensordot(theta, powers, 1) @ self._support(x))


class GraphConvAdj(_GraphConv):
    """Graph convolution (GCN) A (X W^T) + b with a fixed adjacency `adj` (nodes, nodes): a dense NumPy array, or on
    JAX also a jax.experimental.sparse.BCOO (multiplied sparsely)."""

    def __init__(self, in_chs: int, out_chs: int, adj, w_init=None, b_init=None, scope: str = "GRAPHCONVADJ"):
        super().__init__(scope)
        self.sparse = isinstance(adj, sparse.BCOO)
        if self.sparse:
            if adj.ndim != 2 or adj.shape[0] != adj.shape[1] or adj.n_batch or adj.n_dense:
                raise ValueError(f"GraphConvAdj adj must be a square 2-D BCOO (nodes x nodes), got shape {adj.shape}")
            adj = adj.sum_duplicates()
            self.shape = tuple(adj.shape)
        self._linear(in_chs, out_chs, w_init)
        self._bias(out_chs, b_init)
        if self.sparse:  # a BCOO's parts, each a plain array Variable, rebuilt in run
            self.adj_data = FixedWeight(jnp.asarray(adj.data, jnp.float32))
            self.adj_indices = FixedWeight(jnp.asarray(adj.indices))
        else:
            self.adj = FixedWeight(jnp.asarray(graph_matrix(adj, "GraphConvAdj adj")))

    def run(self, x):
        check_float_input(jnp.issubdtype(x.dtype, jnp.floating), x.dtype, type(self).__name__)
        support = self._support(x)
        if not self.sparse:
            return self._finish(self.adj.get_value().astype(x.dtype) @ support)
        adj = sparse.BCOO((self.adj_data.get_value().astype(x.dtype), self.adj_indices.get_value()), shape=self.shape)
        if support.ndim == 2:
            return self._finish(adj @ support)
        moved = jnp.moveaxis(support, -2, 0)
        y = (adj @ moved.reshape(moved.shape[0], -1)).reshape(moved.shape)
        return self._finish(jnp.moveaxis(y, 0, -2))
