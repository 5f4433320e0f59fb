"""Graph convolutions: spectral (eigenbasis), Laplacian polynomial and adjacency (GCN) forms.

Node features X have shape (..., nodes, in_chs); the weight is stored (out_chs, in_chs) as Dense stores it, the
learnable filter `theta` drawn as an (n, 1) weight (the original's shape and fans). The graph matrices are
constants: neither trained nor exported with the weights.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from nebulae.astro import init as _init

from .base import check_float_input

__all__ = ["GraphConvEig", "GraphConvLap", "GraphConvAdj"]


class Kernels(Protocol):
    def graph_array(self, matrix: Any) -> Any:
        """A NumPy copy of `matrix` when it is one of the engine's arrays (dense or sparse); anything else as it is."""

    def sparse_parts(self, matrix: Any) -> tuple | None:
        """(indices, float32 values, shape) as NumPy arrays of `matrix` when it is the engine's sparse matrix (a torch
        sparse tensor, a jax.experimental.sparse.BCOO; duplicates summed), None otherwise."""

    def sparse_matrix(self, indices: Any, values: Any, shape: tuple) -> Any:
        """The engine's sparse matrix from the `sparse_parts` `indices` and `values` (declared as fixed arrays)."""

    def graph_conv_eig(self, x: Any, weight: Any, theta: Any, bias: Any, basis: Any) -> Any:
        """U diag(theta) U^T (x W^T) + b over the eigenvector basis U (nodes, k); bias may be None."""

    def graph_conv_lap(self, x: Any, weight: Any, theta: Any, bias: Any, powers: Any) -> Any:
        """(sum_k theta_k L^k)(x W^T) + b over the Laplacian powers L^k (order, nodes, nodes); bias may be None."""

    def graph_conv_adj(self, x: Any, weight: Any, bias: Any, adj: Any) -> Any:
        """A (x W^T) + b with A dense, or the engine's sparse matrix (multiplied sparsely); bias may be None."""


def graph_matrix(ops: Any, matrix, what: str, square: bool = True) -> np.ndarray:
    """A dense float32 NumPy copy of a graph matrix (a NumPy array, or the engine's array, dense or sparse)."""
    array = np.asarray(ops.graph_array(matrix))
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"{what} must be a 2-D numeric matrix (a dense NumPy array, or a torch sparse tensor /"
            f" jax.experimental.sparse.BCOO), got {type(matrix).__name__}"
        )
    if square and array.shape[0] != array.shape[1]:
        raise ValueError(f"{what} must be square (nodes x nodes), got shape {array.shape}")
    return array.astype(np.float32)


class _GraphConv:
    """What every graph convolution shares: the (out_chs, in_chs) weight, the filter and the bias."""

    def _setup(self, in_chs: int, out_chs: int, w_init, b_init, taps: int | None) -> None:
        """Weight, then the filter of `taps` coefficients (None: no filter), then bias, drawn in that order."""
        self.in_chs, self.out_chs = in_chs, out_chs
        w_init = _init.XavierNorm() if w_init is None else w_init
        self.param("weight", _init.make(w_init, (out_chs, in_chs)))
        if taps is not None:
            self.param("theta", _init.make(w_init, (taps, 1)).reshape(taps))
        self.param("bias", _init.make(_init.Zeros() if b_init is None else b_init, (out_chs,)))

    def weights(self):
        return self.weight


class GraphConvEig(_GraphConv):
    """Spectral graph convolution U diag(theta) U^T (X W^T) + b with a learnable filter `theta` (k,).

    Args:
        in_chs: input features per node.
        out_chs: output features per node.
        eigm: the eigenvector basis U (nodes, k): a NumPy array (or the engine's array, dense or sparse).
        w_init: initialiser of the weight (out_chs, in_chs) and of the filter theta (drawn (k, 1)); default
            Xavier-normal.
        b_init: bias initialiser; default zeros; `Void()` for no bias.
        scope: the name of this craft in checkpoints and summaries.

    The input (..., nodes, in_chs) must be floating-point (TypeError otherwise).
    """

    def __init__(self, in_chs: int, out_chs: int, eigm, w_init=None, b_init=None, scope: str = "GRAPHCONVEIG"):
        super().__init__(scope)
        basis = graph_matrix(self.ops, eigm, "GraphConvEig eigm", square=False)
        self._setup(in_chs, out_chs, w_init, b_init, basis.shape[1])
        self.fixed("eigm", basis)

    def run(self, x):
        check_float_input(self.ops, x, "GraphConvEig")
        return self.ops.graph_conv_eig(x, self.weight, self.theta, self.bias, self.eigm)


class GraphConvLap(_GraphConv):
    """Polynomial graph convolution (sum_{k < order} theta_k L^k)(X W^T) + b over the Laplacian L.

    Args:
        order: the number of polynomial terms (L^0 .. L^(order - 1)), >= 1.
        in_chs: input features per node.
        out_chs: output features per node.
        lap: the Laplacian L (nodes, nodes): a NumPy array (or the engine's array, dense or sparse).
        w_init: initialiser of the weight (out_chs, in_chs) and of the filter theta (drawn (order, 1)); default
            Xavier-normal.
        b_init: bias initialiser; default zeros; `Void()` for no bias.
        scope: the name of this craft in checkpoints and summaries.

    The input (..., nodes, in_chs) must be floating-point (TypeError otherwise).
    """

    def __init__(
        self, order: int, in_chs: int, out_chs: int, lap, w_init=None, b_init=None, scope: str = "GRAPHCONVLAP"
    ):
        super().__init__(scope)
        if order < 1:
            raise ValueError(f"GraphConvLap order must be >= 1, got {order}")
        self.order = order
        lap = graph_matrix(self.ops, lap, "GraphConvLap lap").astype(np.float64)
        powers = [np.eye(lap.shape[0])]
        for _ in range(order - 1):
            powers.append(powers[-1] @ lap)
        self._setup(in_chs, out_chs, w_init, b_init, order)
        self.fixed("powers", np.stack(powers).astype(np.float32))

    def run(self, x):
        check_float_input(self.ops, x, "GraphConvLap")
        return self.ops.graph_conv_lap(x, self.weight, self.theta, self.bias, self.powers)


class GraphConvAdj(_GraphConv):
    """Graph convolution (GCN) A (X W^T) + b with a fixed adjacency A.

    Args:
        in_chs: input features per node.
        out_chs: output features per node.
        adj: the adjacency A (nodes, nodes): a dense NumPy array, or the engine's sparse matrix (a torch sparse
            tensor, a jax.experimental.sparse.BCOO), multiplied sparsely.
        w_init: weight initialiser (out_chs, in_chs); default Xavier-normal.
        b_init: bias initialiser; default zeros; `Void()` for no bias.
        scope: the name of this craft in checkpoints and summaries.

    The input (..., nodes, in_chs) must be floating-point (TypeError otherwise). `craft.adj` is the adjacency
    as the engine multiplies it (sparse when given sparse).
    """

    def __init__(self, in_chs: int, out_chs: int, adj, w_init=None, b_init=None, scope: str = "GRAPHCONVADJ"):
        super().__init__(scope)
        parts = self.ops.sparse_parts(adj)
        self.sparse = parts is not None
        if self.sparse:
            indices, values, shape = parts
            if len(shape) != 2 or shape[0] != shape[1]:
                raise ValueError(f"GraphConvAdj adj must be square (nodes x nodes), got shape {tuple(shape)}")
            self.shape = tuple(int(n) for n in shape)
        else:
            matrix = graph_matrix(self.ops, adj, "GraphConvAdj adj")
        self._setup(in_chs, out_chs, w_init, b_init, None)
        if self.sparse:
            self.fixed("adj_indices", indices)
            self.fixed("adj_values", values)
        else:
            self.fixed("adj_dense", matrix)

    @property
    def adj(self):
        """The adjacency as the engine multiplies it: the dense matrix, or the engine's sparse matrix."""
        if self.sparse:
            return self.ops.sparse_matrix(self.adj_indices, self.adj_values, self.shape)
        return self.adj_dense

    def run(self, x):
        check_float_input(self.ops, x, "GraphConvAdj")
        return self.ops.graph_conv_adj(x, self.weight, self.bias, self.adj)
