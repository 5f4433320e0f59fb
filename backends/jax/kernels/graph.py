"""Graph convolution kernels on JAX (weights (out, in), node features (..., nodes, in)); sparse adjacencies are
jax.experimental.sparse.BCOO matrices."""

import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse

from .base import value


def graph_array(matrix):
    if isinstance(matrix, sparse.BCOO):
        return np.asarray(matrix.todense())
    return np.asarray(matrix) if isinstance(matrix, jnp.ndarray) else matrix


def sparse_parts(matrix):
    if not isinstance(matrix, sparse.BCOO):
        return None
    matrix = sparse.bcoo_update_layout(matrix, n_batch=0, n_dense=0).sum_duplicates()
    return np.asarray(matrix.indices, np.int32), np.asarray(matrix.data, np.float32), tuple(matrix.shape)


def sparse_matrix(indices, values, shape):
    return sparse.BCOO((value(values), value(indices)), shape=shape)


def graph_conv_eig(x, weight, theta, bias, basis):
    u = value(basis, x)
    spectral = (u.T @ (x @ value(weight, x).T)) * value(theta, x)[:, None]
    return _add_bias(u @ spectral, bias)


def graph_conv_lap(x, weight, theta, bias, powers):
    return _add_bias(jnp.tensordot(value(theta, x), value(powers, x), 1) @ (x @ value(weight, x).T), bias)


def graph_conv_adj(x, weight, bias, adj):
    support = x @ value(weight, x).T
    if not isinstance(adj, sparse.BCOO):
        return _add_bias(value(adj, x) @ support, bias)
    adj = sparse.BCOO((adj.data.astype(x.dtype), adj.indices), shape=adj.shape)
    if support.ndim == 2:
        return _add_bias(adj @ support, bias)
    moved = jnp.moveaxis(support, -2, 0)
    y = (adj @ moved.reshape(moved.shape[0], -1)).reshape(moved.shape)
    return _add_bias(jnp.moveaxis(y, 0, -2), bias)


def _add_bias(y, bias):
    return y if bias is None else y + value(bias, y)
