"""Write every plot of the notebooks as a PNG file, plus the worst-errors page.

    python -m training.report --figures DIR [--model MODEL_DIR] [--data EXPORT]

writes every plot as a PNG into DIR (plus worst_errors.html). Without `--model` it
first trains the tiny offline model into a temporary directory. The work is done by
`training.analysis` (the `[report]` extra).
"""

from __future__ import annotations

import argparse
import os
import sys

# Set before the analysis layer imports transformers, which reads it once at import:
# the report never waits on the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .analysis.paths import DEFAULT_EXPORT  # noqa: E402
from .analysis.writer import write_figures  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", required=True, metavar="DIR", help="write every plot as PNG into DIR")
    parser.add_argument("--model", metavar="MODEL_DIR",
                        help="an exported model directory; default: train the tiny model into a temporary directory")
    parser.add_argument("--data", default=DEFAULT_EXPORT,
                        help="Label Studio export for the corpus plots (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        written = write_figures(args.figures, args.model, args.data)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
