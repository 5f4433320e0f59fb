"""Inside run: the portable tensor operations give the same result on both engines, and the common torch-only
idioms fail on JAX with a TypeError that names the idiom and its portable form (README, 'Inside run')."""

from __future__ import annotations

import numpy as np
import pytest

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def _step(dock, body):
    class Step(dock.Craft):
        def __init__(self):
            super().__init__("STEP")

        def run(self, x):
            return body(dock, x)

    return Step()


PORTABLE = [
    (lambda d, x: x.reshape(x.shape[0], -1), X.reshape(2, -1)),
    (lambda d, x: (x * 2 + 1)[:, 1:, ::2].sum(1), (X * 2 + 1)[:, 1:, ::2].sum(1)),
    (lambda d, x: x[0].T, X[0].T),  # .T of a 2-D array (torch deprecates it for other ranks)
    (lambda d, x: x.mean() + x.max() + x.ndim, X.mean() + X.max() + 3),
    (lambda d, x: d.Flatten(1)(x), X.reshape(2, -1)),
]


@pytest.mark.parametrize("body, want", PORTABLE)
def test_portable_operations_give_the_same_result(dock, body, want):
    got = dock.shell(_step(dock, body)(dock.coat(X)))
    np.testing.assert_allclose(got, want, rtol=1e-6)


TORCH_ONLY = [
    ("view", lambda d, x: x.view(2, 12), r"x\.view\(\.\.\.\) is torch-only inside run: use x\.reshape"),
    ("flatten", lambda d, x: x.flatten(1), r"x\.flatten\(start_dim\) is torch-only inside run: use dock\.Flatten"),
    ("size", lambda d, x: x.reshape(x.size(0), -1), r"x\.size\(k\) is torch-only inside run .*use x\.shape\[k\]"),
    ("unsqueeze", lambda d, x: x.unsqueeze(0), r"x\.unsqueeze\(\.\.\.\) is a torch-only tensor method"),
    ("float", lambda d, x: x * float(x.sum()), r"an array was turned into a Python value inside run \(float\(t\)"),
    ("if", lambda d, x: x if x.sum() > 0 else -x, r"an `if`/`while` on an array"),
]


@pytest.mark.parametrize("idiom, body, message", TORCH_ONLY, ids=[t[0] for t in TORCH_ONLY])
def test_torch_only_idioms_run_on_torch_and_fail_clearly_on_jax(dock, engine, idiom, body, message):
    step = _step(dock, body)
    if engine == "pytorch":
        step(dock.coat(X))  # torch runs its own tensor methods
        return
    with pytest.raises(TypeError, match=message) as caught:
        step(dock.coat(X))
    assert str(caught.value).startswith("Step.run: ") and "README, 'Inside run'" in str(caught.value)


def test_other_errors_inside_run_are_left_as_they_are(dock):
    def body(d, x):
        raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        _step(dock, body)(dock.coat(X))
