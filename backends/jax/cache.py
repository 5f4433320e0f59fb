"""JAX's persistent compilation cache, on by default: a second process running the same step loads its
executable from disk instead of compiling it again.

Folder: `NEB_JAX_CACHE_DIR`, else `$XDG_CACHE_HOME/nebulae/jax` (`~/.cache/nebulae/jax`). `NEB_JAX_CACHE=0`
turns it off; a folder the user gave JAX itself (`JAX_COMPILATION_CACHE_DIR` or `jax.config`) wins. JAX keeps
only executables that took at least `jax_persistent_cache_min_compile_time_secs` (1 s by default) to compile,
so small steps are not written.
"""

from __future__ import annotations

import os

import jax

OFF = ("0", "false", "off", "no")


def folder() -> str | None:
    """The cache folder Nebulae gives JAX (None when turned off by NEB_JAX_CACHE)."""
    if os.environ.get("NEB_JAX_CACHE", "1").strip().lower() in OFF:
        return None
    if os.environ.get("NEB_JAX_CACHE_DIR"):
        return os.path.abspath(os.path.expanduser(os.environ["NEB_JAX_CACHE_DIR"]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nebulae", "jax")


def enable() -> str | None:
    """Point JAX's persistent compilation cache at `folder()` unless the user chose one; returns the folder used."""
    chosen = jax.config.jax_compilation_cache_dir
    if chosen:
        return chosen
    path = folder()
    if path is not None:
        jax.config.update("jax_compilation_cache_dir", path)
    return path
