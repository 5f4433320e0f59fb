"""Run a conformance script's plain original and Nebulae port in fresh interpreters, and compare their numbers.

A script `<name>` has `<name>_plain.py` (`ENGINE`, `initial_weights()`, `run(steps, init_weights, lr_scale)`)
and `<name>_port.py` (`run(steps, init_weights)`), both returning a result: {'losses': {metric: (steps,) array},
'weights': {path: array}, 'eval': {name: array}}, weights under Nebulae's names. `child` runs some of them in
one interpreter (started by `run_engine` with NEB_CORE set) and writes the results to an .npz file.

Differences are relative (`difference`): per step for losses, per tensor (L2) for weights and eval arrays.
A tolerance is raised where the original itself moves further when its learning rate changes by 1e-5
relative (`Comparison`): such a quantity cannot be pinned closer than that by any port.
"""

from __future__ import annotations

import importlib
import resource
import time
from pathlib import Path

import numpy as np

from tests.conftest import run_python

KINDS = ("losses", "weights", "eval")
# The engines' Adam steps differ by ~1e-5 relative: optax computes the bias correction 1 - b2**t in float32
# (float32(0.999) = 0.99900001), torch.optim in float64. The original rerun with its learning rate scaled by
# 1 + LR_JITTER shows how far such a difference carries by the last step ("sensitivity").
LR_JITTER = 1e-5
# Rounding: the original rerun from initial weights scaled by 1 + ROUNDING x N(0, 1) element-wise (about one
# float32 ulp) shows how far a rounding difference in one op carries ("jitter": NHWC vs NCHW convolutions,
# a float32 learning rate, ...).
ROUNDING = 1e-7
SPREAD = 2.0  # a tolerance is raised to SPREAD x the original's own spread for that quantity where that is larger
NOISES = {"jitter": "rounding", "sensitivity": "Adam step"}


def save(path: str | Path, results: dict[str, dict]) -> None:
    """Write {role: result} to an .npz file (keys 'role|kind|name')."""
    flat = {
        f"{role}|{kind}|{name}": np.asarray(v)
        for role, res in results.items()
        for kind in res
        for name, v in res[kind].items()
    }
    np.savez(path, **flat)


def load(path: str | Path) -> dict[str, dict]:
    """Read what `save` wrote."""
    out: dict[str, dict] = {}
    with np.load(path) as data:
        for key in data.files:
            role, kind, name = key.split("|", 2)
            out.setdefault(role, {k: {} for k in KINDS})[kind][name] = data[key]
    return out


def child(script: str, roles: list[str], steps: int, out: str, init: str | None = None) -> None:
    """In a fresh interpreter: run `roles` of `script` from the same initial weights.

    Roles: 'plain' (the original), 'port' (Nebulae, on this interpreter's engine), 'jitter' (the original from
    initial weights jittered by ROUNDING) and 'sensitivity' (the original with its learning rate scaled by
    1 + LR_JITTER). The initial weights come from `init` (an .npz written by another child) or from the
    original. torch runs on one thread: on a shared 2-core machine two threads are 3-20x slower here.
    """
    import nebulae

    if nebulae.Law.CORE == "pytorch":
        import torch

        torch.set_num_threads(1)
    needs_plain = init is None or {"plain", "jitter", "sensitivity"} & set(roles)
    plain = importlib.import_module(f"tests.conformance.{script}_plain") if needs_plain else None
    if init is None:
        weights = plain.initial_weights()
    else:
        weights = load(init)["init"]["weights"]
    results: dict[str, dict] = {"init": {"losses": {}, "weights": weights, "eval": {}}}
    for role in roles:
        start = time.perf_counter()
        given = {k: np.array(v) for k, v in weights.items()}
        if role == "port":
            results[role] = importlib.import_module(f"tests.conformance.{script}_port").run(steps, given)
        elif role == "jitter":
            results[role] = plain.run(steps, jittered(given))
        else:
            results[role] = plain.run(steps, given, lr_scale=1.0 + (LR_JITTER if role == "sensitivity" else 0.0))
        results[role].setdefault("eval", {})["seconds"] = np.asarray(time.perf_counter() - start)
    results["init"]["eval"]["engine"] = np.asarray(nebulae.Law.CORE)
    save(out, results)


def jittered(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Floating weights scaled by 1 + ROUNDING x N(0, 1) element-wise (a fixed draw); integer buffers as given."""
    rng = np.random.default_rng(0)
    return {
        k: (v * (1 + ROUNDING * rng.standard_normal(v.shape))).astype(v.dtype) if v.dtype.kind == "f" else v
        for k, v in weights.items()
    }


def run_engine(
    script: str, engine: str, roles: list[str], steps: int, folder: Path, init: Path | None = None
) -> tuple[dict[str, dict], tuple[float, float]]:
    """Run `child` under NEB_CORE=engine; returns ({role: result} including 'init', (wall, CPU) seconds)."""
    out = folder / f"{script}-{engine}.npz"
    code = (
        "from tests.conformance.harness import child; "
        f"child({script!r}, {roles!r}, {steps}, {str(out)!r}, {None if init is None else str(init)!r})"
    )
    start, cpu = time.perf_counter(), _child_cpu()
    res = run_python(code, env={"NEB_CORE": engine}, timeout=300)
    seconds = (time.perf_counter() - start, _child_cpu() - cpu)
    assert res.returncode == 0, f"{script} on {engine} ({roles}) failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return load(out), seconds


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def difference(a: np.ndarray, b: np.ndarray, per_step: bool) -> np.ndarray:
    """Relative differences between `a` and the reference `b`.

    per_step: |a_t - b_t| / |b_t| for each step t (0 where equal). Otherwise one value, ||a - b|| / ||b||
    (L2 over the tensor): a unit whose ReLU input sits within rounding of zero gets a full Adam step (lr) on
    one engine and not on the other, so the largest element-wise gap is no measure of agreement
    (`elementwise` reports it).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {b.shape}")
    if per_step:
        return np.where(a == b, 0.0, np.abs(a - b) / np.maximum(np.abs(b), 1e-30)).reshape(-1)
    gap = float(np.linalg.norm(a - b))
    return np.array([0.0 if gap == 0 else gap / max(float(np.linalg.norm(b)), 1e-30)])


def elementwise(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: the largest element-wise gap on the tensor's own scale (reported, not checked)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    gap = float(np.max(np.abs(a - b))) if a.size else 0.0
    return 0.0 if gap == 0 else gap / max(float(np.max(np.abs(b))), 1e-30)


def _names(result: dict, kind: str) -> list[str]:
    return sorted(set(result[kind]) - {"seconds"})


class Comparison:
    """The measured differences of one test, against tolerances raised where the original itself is sensitive.

    `runs` holds 'plain' (the original) and its reruns 'jitter' and 'sensitivity' (see NOISES). A pair is
    compared within `tol`, raised for each quantity (each loss step, weight tensor, eval array) to SPREAD x
    the spread between the original and the reruns named for that pair, where that is larger.
    """

    def __init__(self, script: str, runs: dict[str, dict]):
        self.script = script
        plain = runs["plain"]
        self.noise = {
            role: {
                kind: {
                    n: difference(runs[role][kind][n], plain[kind][n], kind == "losses") for n in _names(plain, kind)
                }
                for kind in KINDS
            }
            for role in NOISES
        }
        self.rows: list[tuple[str, str, str, float, float, float]] = []  # pair, kind, where, diff, allowed, tol
        self.gaps: dict[str, tuple[float, str]] = {}  # pair -> largest element-wise weight gap, tensor

    def check(self, pair: str, got: dict, ref: dict, tol: float, noises: tuple[str, ...]) -> None:
        """Compare two results (every loss, weight and eval array of the reference) within `tol`, raised to
        SPREAD x the original's spread under `noises` (roles of NOISES) where that is larger."""
        for kind in KINDS:
            missing = [n for n in _names(ref, kind) if n not in got[kind]]
            assert not missing, f"{self.script} {pair}: {kind} missing {missing}"
            for name in _names(ref, kind):
                diff = difference(got[kind][name], ref[kind][name], kind == "losses")
                allowed = np.full_like(diff, tol)
                for role in noises:
                    allowed = np.maximum(allowed, SPREAD * self.noise[role][kind].get(name, np.zeros_like(diff)))
                for i in range(len(diff)):
                    where = f"{name} step {i}" if kind == "losses" else name
                    self.rows.append((pair, kind, where, float(diff[i]), float(allowed[i]), tol))
        self.gaps[pair] = max(((elementwise(got["weights"][k], w), k) for k, w in ref["weights"].items()))

    def failures(self) -> list[str]:
        return [
            f"{pair}: {kind} {where}: {diff:.3e} > {allowed:.1e}"
            for pair, kind, where, diff, allowed, _ in self.rows
            if diff > allowed
        ]

    def report(self) -> str:
        """Per pair and kind: the largest difference, where, and its allowance; raised tolerances; failures."""
        lines = []
        for pair in dict.fromkeys(r[0] for r in self.rows):
            for kind in KINDS:
                rows = [r for r in self.rows if r[0] == pair and r[1] == kind]
                if not rows:
                    continue
                _, _, where, diff, allowed, tol = max(rows, key=lambda r: r[3])
                raised = [r for r in rows if r[4] > r[5]]
                note = (
                    f"; {len(raised)}/{len(rows)} allowances raised, up to {max(r[4] for r in raised):.1e}"
                    if raised
                    else ""
                )
                lines.append(
                    f"{self.script}: {pair:<30} {kind:<7} max {diff:8.2e} at {where} "
                    f"(allowed {allowed:.1e}, tol {tol:.0e}{note})"
                )
            gap, where = self.gaps[pair]
            lines.append(
                f"{self.script}: {pair:<30} weights largest element-wise gap {gap:8.2e} at {where} (not checked)"
            )
        return "\n".join(lines + [f"{self.script}: OVER: {f}" for f in self.failures()])


def assert_trained(result: dict, init: dict, tol: float, what: str) -> None:
    """Every floating weight moved from its initial value by over twice the tolerance, so the comparisons can fail."""
    still = [
        k
        for k, w in init["weights"].items()
        if np.issubdtype(np.asarray(w).dtype, np.floating) and difference(result["weights"][k], w, False)[0] <= 2 * tol
    ]
    assert not still, f"{what}: these weights barely moved from their initial values: {still}"


def run_script(script: str, plain_engine: str, steps: int, folder: Path) -> tuple[dict[str, dict], str]:
    """The original (and its reruns, NOISES) and the port on the original's engine in one interpreter,
    then the port on the other engine in another.

    Returns ({'init', 'plain', 'jitter', 'sensitivity', 'nebulae-torch', 'nebulae-jax'}: results, a timing line).
    """
    other = "jax" if plain_engine == "pytorch" else "pytorch"
    first, t1 = run_engine(script, plain_engine, ["plain", *NOISES, "port"], steps, folder)
    second, t2 = run_engine(script, other, ["port"], steps, folder, init=folder / f"{script}-{plain_engine}.npz")
    label = {"pytorch": "nebulae-torch", "jax": "nebulae-jax"}
    out = {
        "init": first["init"],
        "plain": first["plain"],
        **{role: first[role] for role in NOISES},
        label[plain_engine]: first["port"],
        label[other]: second["port"],
    }
    runs = ", ".join(
        f"{name} {float(out[name]['eval']['seconds']):.1f} s"
        for name in ("plain", *NOISES, "nebulae-torch", "nebulae-jax")
    )
    timing = (
        f"{script}: {plain_engine} process {t1[0]:.1f} s wall / {t1[1]:.1f} s CPU, "
        f"{other} process {t2[0]:.1f} s wall / {t2[1]:.1f} s CPU ({runs}, {steps} steps)"
    )
    return out, timing
