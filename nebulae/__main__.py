"""`python -m nebulae`: info, gpus, demo, bench, pack (each with --help)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

PASS_THROUGH = ("demo",)


def _info(args: argparse.Namespace) -> int:
    import importlib.metadata as md

    import nebulae

    print(f"nebulae {nebulae.__version__}; engine: {nebulae.Law.CORE} (NEB_CORE={os.environ.get('NEB_CORE', '')!r})")
    print(f"  python             {sys.version.split()[0]} ({sys.executable})")
    for dist in (
        "numpy", "torch", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "h5py",
        "matplotlib", "pyyaml", "nvidia-ml-py", "onnx",
    ):  # fmt: skip
        try:
            print(f"  {dist:18s} {md.version(dist)}")
        except md.PackageNotFoundError:
            print(f"  {dist:18s} not installed")
    from nebulae.kit.gputil import GPUtil

    gpus = GPUtil().devices()
    print(f"  NVIDIA GPUs (NVML): {len(gpus)}" + "".join(f"\n    {g.index}: {g.name}, {g.total} MiB" for g in gpus))
    if args.devices:
        from nebulae.astro import dock

        dock.Craft  # noqa: B018 (binds the engine)
        print(f"  {nebulae.Law.CORE} devices: {nebulae.law.backend().devices()}")
    return 0


def _gpus(args: argparse.Namespace) -> int:
    from nebulae.kit.gputil import GPUtil

    util = GPUtil()
    if args.monitor > 0:
        import time

        util.monitor(args.every)
        time.sleep(args.monitor)
        util.status()
        return 0
    gpus = util.devices()
    if not gpus:
        print("no NVIDIA GPU visible (no driver, no nvidia-ml-py, or CUDA_VISIBLE_DEVICES hides them)")
        return 0
    print(f"| {'GPU':>3} | {'Name':<28} | {'Total MiB':>9} | {'Free MiB':>9} |")
    for g in sorted(gpus, key=lambda g: (-g.free, g.index)):
        print(f"| {g.index:>3} | {g.name[:28]:<28} | {g.total:>9} | {g.free:>9} |")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """`nebulae demo ...`: `nebulae.demo.main` on the engine `--core` names (its own flags after it)."""
    if importlib.util.find_spec("sklearn") is None:
        print("nebulae demo needs scikit-learn (the digits it trains on): pip install 'nebulae[demo]'", file=sys.stderr)
        return 2
    os.environ["NEB_CORE"] = args.core
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before the engine is imported: see nebulae/demo.py
    from nebulae import demo

    return demo.main(args.rest)


def _bench(argv: list[str]) -> int:
    """`nebulae bench ...`: the benchmark suite, `nebulae.benchmarks.run.main` (its own --help)."""
    from nebulae.benchmarks import run

    return run.main(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nebulae` command line."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m nebulae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="versions, engine and devices")
    info.add_argument("--devices", action="store_true", help="bind the engine and list its devices")
    info.set_defaults(func=_info)
    gpus = sub.add_parser("gpus", help="NVIDIA GPUs and their free memory (NVML), most free first")
    gpus.add_argument(
        "--monitor", type=float, default=0, metavar="SEC", help="sample for SEC seconds, then print averages"
    )
    gpus.add_argument("--every", type=float, default=1, metavar="SEC", help="sampling period with --monitor")
    gpus.set_defaults(func=_gpus)
    demo = sub.add_parser("demo", help="run the end-to-end demo on one engine")
    demo.add_argument("--core", default=os.environ.get("NEB_CORE", "pytorch"), help="pytorch or jax")
    demo.epilog = "Other flags (--epochs, --batch-size, --lr, --out, --quick) go to nebulae.demo (nebulae/demo.py)."
    demo.set_defaults(func=_demo)
    sub.add_parser("bench", help="the cross-backend benchmark suite (nebulae.benchmarks); see `bench --help`")
    from nebulae.fuel import pack

    pack.add_parser(sub)
    args, rest = parser.parse_known_args(argv)
    if args.command in PASS_THROUGH:  # their own flags go to the script, which checks them
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
