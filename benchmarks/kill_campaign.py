"""Kill campaign: SIGKILL a real training process at random times during and after `TimeMachine.drop`, then
check with a fresh process that no finished anchor was lost or corrupted and that the next drop leaves no leftovers.

Each trial starts a trainer (its own interpreter, NEB_CORE set) that resumes from the newest anchor in the
folder (if any) and loops: train, drop a numbered anchor (`TRAIN-<step>`, `max_anchors=3`), train, re-save
`file='best'`, training between each drop and its `wait()`. Before each drop it writes the digest of the
weights it saves to a journal (flushed line by line), after the `wait()` that the anchor is finished. The
parent kills it with SIGKILL after a random delay, then a checker (a fresh interpreter) loads:

- `best` (once a `best` was finished): it must load, and hold the last finished values or those of the drop
  in flight when the kill came;
- the newest finished numbered anchors that rotation keeps (and the one in flight, if it landed): each must
  load with the values journalled for it;
- the newest anchor through `to()` without a file name, without any warning.

An anchor that is missing counts as LOST; one that fails to load (refused as corrupt, unreadable) or loads
other values counts as CORRUPT. The checker then drops once more (a numbered anchor and `best`, as the next
run would) and counts LEFTOVERS: hidden or Orbax temporary entries, and numbered anchors beyond `max_anchors`.
The next trial resumes from that folder, so a campaign also exercises resume after each kill.

    python -m benchmarks.kill_campaign --engine torch|jax --kills 20 [--seed 0] [--out DIR] [--json FILE]

It prints the counts and writes them (with every trial) as JSON (default: <out>/kill_campaign-<engine>.json).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from .common import PACKAGE, REPO, child_env
from .train_step import mlp_craft, train_craft

KEEP = 3  # max_anchors of the numbered anchors
ENGINES = {"torch": "pytorch", "pytorch": "pytorch", "jax": "jax"}
HIDDEN = "orbax-checkpoint-tmp"


# ---------------------------------------------------------------------------------------------- the workload


def _workload(dock):
    """A Dense net 64-2048-2048-8 (about 4.5 M parameters: with Adam's two slots ~55 MB per anchor) and its
    training step (the benchmarks' seed-style Train craft)."""
    from nebulae.astro import init

    init.seed(0)
    return train_craft(dock, mlp_craft(dock, [64, 2048, 2048, 8]))


def _digest(craft) -> str:
    """SHA-256 of every weight of `craft` (sorted by path): which values an anchor holds."""
    import numpy as np

    h = hashlib.sha256()
    for key, value in sorted(craft.export_weights().items()):
        h.update(key.encode())
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


class Journal:
    """One JSON object a line, flushed at once: what the trainer (or checker) started and finished."""

    def __init__(self, path: Path, who: str):
        self.file, self.who = open(path, "a", buffering=1), who  # noqa: SIM115 (open until the process dies)

    def write(self, **event) -> None:
        self.file.write(json.dumps({"who": self.who, **event}) + "\n")
        self.file.flush()


def _drop(tm, train, journal: Journal, kind: str, between=None) -> None:
    """Journal the intent (kind, digest), drop, journal the path; run `between` (training); wait; journal done."""
    journal.write(ev="start", kind=kind, digest=_digest(train))
    path = tm.drop(train, file="best" if kind == "best" else "")
    journal.write(ev="path", kind=kind, path=path)
    if between is not None:
        between()
    tm.wait()
    journal.write(ev="done", kind=kind, path=path)


def trainer(root: Path) -> None:
    """Resume from the newest anchor (if any), then train and drop until killed."""
    import numpy as np

    from nebulae.astro import dock
    from nebulae.cockpit.timemachine import TimeMachine

    train = _workload(dock)
    tm = TimeMachine(root / "ckpt", root / "ckpt", max_anchors=KEEP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(FileNotFoundError):  # the first run starts afresh
            tm.to(train)
    rng = np.random.default_rng(os.getpid())
    journal = Journal(root / "journal.jsonl", f"trainer-{os.getpid()}")

    def step(n: int = 1) -> None:
        for _ in range(n):
            x = rng.normal(size=(16, 64)).astype(np.float32)
            train(dock.coat(x), dock.coat(rng.integers(0, 8, 16)))

    step()  # compiled (JAX) before the parent's clock starts
    print("READY", flush=True)
    while True:
        step(2)
        _drop(tm, train, journal, "numbered", between=step)
        step()
        _drop(tm, train, journal, "best", between=step)


# ---------------------------------------------------------------------------------------------- the checker


def _expected(events: list[dict]) -> dict:
    """From the journal: best's acceptable digests, the numbered anchors that must exist, the drop in flight."""
    finished: dict[str, str] = {}  # numbered path -> digest of its last finished save, in finishing order
    best: list[str] = []  # digests acceptable for 'best'
    best_done = False
    flight = None  # (kind, digest, path or None) of a drop started and not finished by the killed process
    open_drops: dict[tuple[str, str], dict] = {}
    for e in events:
        key = (e["who"], e["kind"])
        if e["ev"] == "start":
            open_drops[key] = {"digest": e["digest"], "path": None}
        elif e["ev"] == "path":
            open_drops[key]["path"] = e["path"]
        elif e["ev"] == "done":
            entry = open_drops.pop(key)
            if e["kind"] == "best":
                best, best_done = [entry["digest"]], True
            else:
                finished.pop(e["path"], None)
                finished[e["path"]] = entry["digest"]
    for (_, kind), entry in open_drops.items():  # only the last trainer can have one (earlier ones were checked)
        flight = (kind, entry["digest"], entry["path"])
        if kind == "best":
            best.append(entry["digest"])
    return {"finished": finished, "best": best, "best_done": best_done, "flight": flight}


def _load(tm, train, file: str) -> tuple[str | None, str]:
    """(digest, '') after `tm.to(train, file=file)`; (None, why) when it failed; (digest, why) when `to` warned
    that it refused a corrupt anchor. Other warnings (a key the code added since the anchor was written) are
    not about the anchor's bytes: the digest judges the values."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tm.to(train, file=file)
        except FileNotFoundError as err:
            return None, f"missing: {err}"
        except Exception as err:  # noqa: BLE001 (a corrupt, unreadable or foreign anchor: counted)
            return None, f"failed: {type(err).__name__}: {err}"
    refused = [str(w.message) for w in caught if "corrupt" in str(w.message)]
    return _digest(train), ("warned: " + "; ".join(refused)) if refused else ""


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def checker(root: Path) -> None:
    """Check the folder after a kill (lost / corrupt), drop once more, count leftovers; print one JSON line."""
    from nebulae.astro import dock
    from nebulae.cockpit.timemachine import TimeMachine

    folder = root / "ckpt"
    events = [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines() if line.strip()]
    want = _expected(events)
    before = _listing(folder)
    lost, corrupt, notes = [], [], []
    train = _workload(dock)
    tm = TimeMachine(folder, folder, max_anchors=KEEP)
    kind, flying_digest, flying_path = want["flight"] or (None, None, None)

    def judge(name: str, file: str, accepted: list[str]) -> None:
        got, why = _load(tm, train, file)
        if got is None and why.startswith("missing"):
            lost.append(name)
            notes.append(f"{name}: {why}")
        elif got is None or got not in accepted or why:
            corrupt.append(name)
            notes.append(f"{name}: {why or 'loaded values that were never saved under this name'}")

    if want["best_done"]:
        judge("best", "best", want["best"])
    numbered = list(want["finished"].items())
    landed = kind == "numbered" and flying_path is not None and os.path.exists(flying_path)
    window = KEEP - 1 if landed and flying_path not in want["finished"] else KEEP
    for path, digest in numbered[-window:]:
        accepted = [digest, flying_digest] if path == flying_path else [digest]
        judge(os.path.basename(path), path, accepted)
    if landed and flying_path not in want["finished"]:
        judge(os.path.basename(flying_path), flying_path, [flying_digest])
    if numbered or landed:  # the newest through to() without a name: no warning, and a journalled digest
        newest_ok = {d for _, d in numbered[-window:]} | ({flying_digest} if landed else set())
        got, why = _load(tm, train, "")
        if got is None or why or got not in newest_ok:
            (lost if why.startswith("missing") else corrupt).append("newest")
            notes.append(f"newest via to(): {why or 'unexpected values'}")
    # the next drop, as the next run would make it
    journal = Journal(root / "journal.jsonl", f"checker-{os.getpid()}")
    _drop(tm, train, journal, "numbered")
    _drop(tm, train, journal, "best")
    after = _listing(folder)
    leftovers = [e for e in after if e.startswith(".") or HIDDEN in e]
    from nebulae.cockpit import anchors

    suffix = ".pth" if dock.Craft.__module__.startswith("nebulae.backends.torch") else ""
    extra = anchors.listing(str(folder), "TRAIN", suffix, os.path.exists)[:-KEEP]
    leftovers += [os.path.basename(p) for _, p in extra]
    print(
        "RESULT "
        + json.dumps(
            {"lost": lost, "corrupt": corrupt, "leftovers": leftovers, "notes": notes, "before": before, "after": after}
        ),
        flush=True,
    )


# ---------------------------------------------------------------------------------------------- the campaign


def _spawn(role: str, engine: str, root: Path, env_extra: dict | None = None) -> subprocess.Popen:
    env = child_env({"NEB_CORE": engine, **(env_extra or {})})
    env.pop("NEB_FAULT", None)
    args = [sys.executable, "-m", f"{PACKAGE}.kill_campaign", f"--{role}", "--engine", engine, "--root", str(root)]
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _in_flight(root: Path) -> bool:
    """Whether the journal's last trainer event is a drop started and not finished (the kill came during it)."""
    lines = (root / "journal.jsonl").read_text().splitlines() if (root / "journal.jsonl").exists() else []
    for line in reversed(lines):
        event = json.loads(line)
        if event["who"].startswith("trainer"):
            return event["ev"] != "done"
    return False


def trial(engine: str, root: Path, delay: float, timeout: float = 300.0) -> dict:
    """One kill: start the trainer, SIGKILL it `delay` s after it is ready, check with a fresh process."""
    proc = _spawn("trainer", engine, root)
    try:
        deadline = time.monotonic() + timeout
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            proc.kill()
            raise RuntimeError(f"the trainer failed before training: {line}{proc.stderr.read()[-4000:]}")
        time.sleep(delay)
        if proc.poll() is not None:
            raise RuntimeError(f"the trainer exited early ({proc.returncode}): {proc.stderr.read()[-4000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    during = _in_flight(root)
    check = _spawn("checker", engine, root)
    out, err = check.communicate(timeout=timeout)
    results = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if check.returncode != 0 or not results:
        raise RuntimeError(f"the checker failed ({check.returncode}): {err[-4000:]}")
    return {"delay_s": round(delay, 3), "during_drop": during, **json.loads(results[-1][len("RESULT ") :])}


def campaign(engine: str, kills: int, seed: int = 0, root: Path | None = None, horizon: float = 4.0) -> dict:
    """`kills` trials in one folder (each resumes from the last); the counts and every trial."""
    engine = ENGINES[engine]
    rng = random.Random(seed)
    own = root is None
    root = Path(tempfile.mkdtemp(prefix=f"kill-campaign-{engine}-")) if own else Path(root)
    root.mkdir(parents=True, exist_ok=True)
    trials = []
    try:
        for i in range(kills):
            t = trial(engine, root, rng.uniform(0.0, horizon))
            trials.append(t)
            print(
                f"kill {i + 1}/{kills} after {t['delay_s']:.2f}s ({'during' if t['during_drop'] else 'after'} a drop):"
                f" lost {len(t['lost'])}, corrupt {len(t['corrupt'])}, leftovers {len(t['leftovers'])}"
                + (f" -- {'; '.join(t['notes'])[:300]}" if t["notes"] else ""),
                flush=True,
            )
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    return {
        "engine": engine,
        "kills": len(trials),
        "during_drop": sum(t["during_drop"] for t in trials),
        "after_drop": sum(not t["during_drop"] for t in trials),
        "lost": sum(len(t["lost"]) for t in trials),
        "corrupt": sum(len(t["corrupt"]) for t in trials),
        "leftovers": sum(len(t["leftovers"]) for t in trials),
        "seed": seed,
        "horizon_s": horizon,
        "trials": trials,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", required=True, choices=sorted(ENGINES))
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizon", type=float, default=4.0, help="kill within this many seconds of readiness")
    parser.add_argument("--out", default="bench_out", help="folder for the JSON report")
    parser.add_argument("--json", default=None, help="the report's path (default: <out>/kill_campaign-<engine>.json)")
    parser.add_argument("--trainer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.trainer:
        trainer(Path(args.root))
        return 0
    if args.checker:
        checker(Path(args.root))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the trial's `finally` then kills its child
    started = time.monotonic()
    report = campaign(args.engine, args.kills, args.seed, horizon=args.horizon)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["command"] = " ".join(["python -m benchmarks.kill_campaign", *(argv or sys.argv[1:])])
    path = Path(args.json or Path(args.out) / f"kill_campaign-{ENGINES[args.engine]}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    print(
        f"{report['engine']}: {report['kills']} kills ({report['during_drop']} during a drop, {report['after_drop']} "
        f"after): anchors lost {report['lost']}, corrupted {report['corrupt']}, leftovers after the next drop "
        f"{report['leftovers']} ({report['seconds']} s) -> {path}"
    )
    return 0 if report["lost"] == report["corrupt"] == report["leftovers"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
