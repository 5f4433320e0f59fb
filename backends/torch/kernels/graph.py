"""Graph convolution kernels on torch (weights (out, in), node features (..., nodes, in))."""

import torch


def graph_array(matrix):
    if isinstance(matrix, torch.Tensor):
        return (matrix.to_dense() if matrix.is_sparse else matrix).detach().cpu().numpy()
    return matrix


def sparse_parts(matrix):
    if not (isinstance(matrix, torch.Tensor) and matrix.is_sparse):
        return None
    matrix = matrix.detach().coalesce().to(torch.float32)
    return matrix.indices().cpu().numpy(), matrix.values().cpu().numpy(), tuple(matrix.shape)


def sparse_matrix(indices, values, shape):
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=False, is_coalesced=True)


def graph_conv_eig(x, weight, theta, bias, basis):
    spectral = torch.matmul(basis.t(), torch.matmul(x, weight.t())) * theta[:, None]
    return _bias(torch.matmul(basis, spectral), bias)


def graph_conv_lap(x, weight, theta, bias, powers):
    return _bias(torch.matmul(torch.tensordot(theta, powers, 1), torch.matmul(x, weight.t())), bias)


def graph_conv_adj(x, weight, bias, adj):
    support = torch.matmul(x, weight.t())
    if not adj.is_sparse:
        return _bias(torch.matmul(adj, support), bias)
    if support.ndim == 2:
        return _bias(torch.sparse.mm(adj, support), bias)
    moved = support.movedim(-2, 0)
    y = torch.sparse.mm(adj, moved.reshape(moved.shape[0], -1)).reshape(moved.shape)
    return _bias(y.movedim(0, -2), bias)


def _bias(y, bias):
    return y if bias is None else y + bias
