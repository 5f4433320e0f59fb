"""`python -m nebulae`: info, demo, pack (more commands arrive with their features)."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _info(args: argparse.Namespace) -> int:
    import importlib.metadata as md

    import nebulae

    print(f"nebulae {nebulae.__version__}; engine: {nebulae.Law.CORE} (NEB_CORE={os.environ.get('NEB_CORE', '')!r})")
    for dist in ("numpy", "torch", "jax", "flax", "optax", "orbax-checkpoint", "grain", "h5py"):
        try:
            print(f"  {dist:18s} {md.version(dist)}")
        except md.PackageNotFoundError:
            print(f"  {dist:18s} not installed")
    if args.devices:
        from nebulae.astro import dock

        dock.Craft  # noqa: B018 (binds the engine)
        print(f"  devices: {nebulae.law.backend().devices()}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    os.environ["NEB_CORE"] = args.core
    script = EXAMPLES / "demo.py"
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nebulae` command line."""
    parser = argparse.ArgumentParser(prog="python -m nebulae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="versions, engine and devices")
    info.add_argument("--devices", action="store_true", help="bind the engine and list its devices")
    info.set_defaults(func=_info)
    demo = sub.add_parser("demo", help="run the end-to-end demo on one engine")
    demo.add_argument("--core", default=os.environ.get("NEB_CORE", "pytorch"), help="pytorch or jax")
    demo.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to examples/demo.py")
    demo.set_defaults(func=_demo)
    from nebulae.fuel import pack

    pack.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
