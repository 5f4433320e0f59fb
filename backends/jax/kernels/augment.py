"""Augmentation kernels on JAX: dm-pix on NCHW (`channel_axis=-3`), draws from each craft's (key, counter) stream."""

import dm_pix as pix
import jax
import jax.numpy as jnp
from flax import nnx

from nebulae.astro import init as _init


class RngState(nnx.Variable):
    """A random stream's key data and counter (checkpointed, not exported with the weights)."""


def augment_stream():
    key = jax.random.key_data(jax.random.key(_init.draw_seed()))
    return RngState(key), RngState(jnp.zeros((), jnp.uint32))


def _draw(stream):
    """The stream's next key (advances its counter): a compiled step draws anew each step without retracing."""
    key, count = stream
    n = count.get_value()
    count.set_value(n + 1)
    return jax.random.fold_in(jax.random.wrap_key_data(key.get_value()), n)


def rand_flags(stream, x, p):
    return jax.random.bernoulli(_draw(stream), p, (x.shape[0],))


def rand_uniform(stream, x, lo, hi):
    return jax.random.uniform(_draw(stream), (x.shape[0],), jnp.float32, lo, hi)


def rand_offsets(stream, x, rows, cols):
    k_top, k_left = jax.random.split(_draw(stream))
    n = x.shape[0]
    top = jax.random.randint(k_top, (n,), 0, rows + 1)
    left = jax.random.randint(k_left, (n,), 0, cols + 1)
    return jnp.stack([top, left], axis=1)


def flip_lr(x, flags):
    return jnp.where(jnp.reshape(flags, (-1, 1, 1, 1)), pix.flip_left_right(x, channel_axis=-3), x)


def crop_at(x, offsets, size, padding):
    p, (h, w) = padding, size
    padded = jnp.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x

    def crop(image, at):
        return jax.lax.dynamic_slice(image, (0, at[0], at[1]), (image.shape[0], h, w))

    return jax.vmap(crop)(padded, jnp.asarray(offsets, jnp.int32))


def _per_sample(values, x, ndim: int = 4):
    return jnp.reshape(values, (-1,) + (1,) * (ndim - 1)).astype(x.dtype)


def brighten(x, shift):
    return jnp.clip(pix.adjust_brightness(x, _per_sample(shift, x)), 0.0, 1.0)


def contrast(x, factor):
    return jnp.clip(pix.adjust_contrast(x, _per_sample(factor, x), channel_axis=-3), 0.0, 1.0)


def saturate(x, factor):
    return pix.adjust_saturation(x, _per_sample(factor, x, 3), channel_axis=-3)


def shift_hue(x, shift):
    return pix.adjust_hue(x, _per_sample(shift, x, 3), channel_axis=-3)
