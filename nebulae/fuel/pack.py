"""`python -m nebulae pack`: pack the files listed in a CSV into Nebulae HDF5 file(s) from the command line.

Example: `python -m nebulae pack list.csv data/train.hdf5 --file-dir raw --dtype vuint8,int64 --height 224
--width 224 --shards 4`. The Generator is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `pack` command to a `python -m nebulae` sub-parser set; returns its parser."""
    parser = subparsers.add_parser(
        "pack",
        help="pack images + a CSV into HDF5 (fuel.Generator)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of `pack` on `parser` and make `run` its handler."""
    parser.add_argument("file_list", help="CSV with a header row; column 1 names the image file(s)")
    parser.add_argument("dst_path", help="output .hdf5 file (with --shards K: <stem>_<i>of<K><suffix>)")
    parser.add_argument("--file-dir", default=None, help="folder the image paths are relative to (default: the CSV's)")
    parser.add_argument(
        "--dtype",
        required=True,
        type=lambda text: [d.strip() for d in text.split(",")],
        metavar="DTYPES",
        help="comma-separated, one per CSV column, the first for the images: e.g. vuint8,int64,vfloat32,str",
    )
    parser.add_argument("--seq", action="store_true", help="column 1 holds comma-separated frame lists")
    parser.add_argument("--height", type=int, default=0, help="resize to this height (0 with --width 0: keep sizes)")
    parser.add_argument("--width", type=int, default=0, help="resize to this width")
    parser.add_argument("--channel", type=int, default=3, choices=(1, 3), help="1 = grey, 3 = RGB (default)")
    parser.add_argument("--encode", default="JPEG", help="JPEG (quality 95, default) or PNG (lossless)")
    parser.add_argument("--shards", type=int, default=1, help="number of output files (default 1)")
    parser.add_argument("--strip-exif", action="store_true", help="drop EXIF metadata (orientation is applied anyway)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores; 0: none)")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse images whose header declares more pixels (default: env NEB_MAX_PIXELS, else 2**28; 0: no limit)",
    )
    parser.add_argument(
        "--allow-outside",
        action="store_true",
        help="pack image paths that lead outside --file-dir (../, absolute, symlinks out); refused by default",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `pack` with parsed arguments: print the written paths; on bad input print the error, return 1."""
    from nebulae.fuel.generator import Generator

    try:
        generator = Generator(
            file_dir=args.file_dir,
            file_list=args.file_list,
            dtype=args.dtype,
            is_seq=args.seq,
            max_pixels=args.max_pixels,
            allow_outside=args.allow_outside,
        )
        paths = generator.generate(
            args.dst_path,
            height=args.height,
            width=args.width,
            channel=args.channel,
            encode=args.encode,
            shards=args.shards,
            keep_exif=not args.strip_exif,
            workers=args.workers,
        )
    except (ValueError, TypeError, OSError) as err:
        print(f"pack: error: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m nebulae.fuel.pack ...`: the same command without the `nebulae` front."""
    parser = argparse.ArgumentParser(prog="python -m nebulae pack", description=__doc__)
    configure(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
