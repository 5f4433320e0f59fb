"""Linear-algebra and spectral kernels on JAX: jnp.linalg / jnp.fft, in the canonical signs of the specs."""

import jax
import jax.numpy as jnp


def qr(m, reduced):
    q, r = jnp.linalg.qr(m, mode="reduced" if reduced else "complete")
    diag = jnp.diagonal(r, axis1=-2, axis2=-1)
    sign = jnp.where(diag < 0, -1.0, 1.0).astype(m.dtype)
    pad = [(0, 0)] * (sign.ndim - 1) + [(0, r.shape[-2] - diag.shape[-1])]
    sign = jnp.pad(sign, pad, constant_values=1.0)
    return q * sign[..., None, :], r * sign[..., :, None]


def eigh(m, vectors):
    if not vectors:
        return jnp.linalg.eigvalsh(m, UPLO="L")
    values, vecs = jnp.linalg.eigh(m, UPLO="L", symmetrize_input=False)
    top = jnp.take_along_axis(vecs, jnp.argmax(jnp.abs(vecs), axis=-2, keepdims=True), axis=-2)
    return values, vecs * jnp.where(top < 0, -1.0, 1.0).astype(vecs.dtype)


def max_eigen(m, niters, start, eps):
    n = m.shape[-1]
    x0 = jnp.remainder(jnp.arange(1, n + 1, dtype=m.dtype) * start, 1.0) + 1.0
    x0 = jnp.broadcast_to(x0 / jnp.linalg.norm(x0), m.shape[:-1])

    def step(_, v):
        v = jnp.matmul(m, v[..., None])[..., 0]
        return v / (jnp.linalg.norm(v, axis=-1, keepdims=True) + eps)

    v = jax.lax.fori_loop(0, niters, step, x0)  # one compiled loop body, not niters unrolled copies
    return jnp.sum(v * jnp.matmul(m, v[..., None])[..., 0], axis=-1), v


def fftn(m, axes, ortho):
    return jnp.fft.fftn(m, axes=axes, norm="ortho" if ortho else "backward")


def ifftn(ft, axes, ortho):
    return jnp.fft.ifftn(ft, axes=axes, norm="ortho" if ortho else "backward")


def polar(ft, eps):
    return jnp.sqrt(jnp.square(ft.real) + jnp.square(ft.imag) + eps), jnp.arctan2(ft.imag, ft.real + eps)
