"""Element-wise kernels on JAX: jax.numpy, with torch's gradients for abs and clamp at their kinks."""

import jax
import jax.numpy as jnp


@jax.custom_jvp
def _abs(x):
    return jnp.abs(x)


@_abs.defjvp
def _abs_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return jnp.abs(x), jnp.sign(x) * dx  # sign(0) = 0: torch's gradient at the kink (jnp.abs gives 1)


UNARY = {
    "sqrt": jnp.sqrt,
    "exp": jnp.exp,
    "log": jnp.log,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "abs": _abs,
}


def unary(how, x):
    return UNARY[how](x)


def maximum(x, y):
    return jnp.maximum(x, y)


def minimum(x, y):
    return jnp.minimum(x, y)


def clamp(x, lo, hi):
    # where-based, not jnp.clip: an input ON a bound keeps its full gradient, as torch.clamp gives it
    if lo is not None:
        x = jnp.where(x < lo, jnp.asarray(lo, x.dtype), x)
    if hi is not None:
        x = jnp.where(x > hi, jnp.asarray(hi, x.dtype), x)
    return x


def where(condition, x, y):
    return jnp.where(condition, x, y)


def stop_gradient(x):
    return jax.lax.stop_gradient(x)
