"""`python -m training.run`: train, evaluate and export a PhoBERT token classifier.

One YAML config describes the run (default: configs/default.yaml); `--set KEY=VALUE`
overrides single keys. The run reads and validates the data, segments it, loads the
backbone (falling back to the tiny offline one loudly, if allowed), trains with the
Hugging Face Trainer (early stopping on dev F1, best checkpoint kept), evaluates the
exported model on the test split with seqeval, and writes models/<run-name>/
atomically. Runs unchanged under `torchrun --nproc_per_node=N -m training.run`.
"""

from __future__ import annotations

import argparse
import logging
import sys

import yaml

from .data.readers import AnnotationError
from .train.config import ConfigError, load_config

DEFAULT_CONFIG = "configs/default.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.run",
        description=__doc__.split("\n\n")[0],
        epilog="Examples:\n"
               "  python -m training.run                              # configs/default.yaml\n"
               "  python -m training.run --config configs/tiny.yaml --set train.batch_size=4\n"
               "  python -m training.run --config configs/tiny.yaml --cv\n"
               "  torchrun --nproc_per_node=2 -m training.run --config configs/tiny.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="run config (YAML); default: %(default)s")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set train.epochs=5 (repeatable)")
    parser.add_argument("--cv", action="store_true", help="leave-one-document-out cross-validation (no export)")
    parser.add_argument("--resume", action="store_true", help="resume from the last checkpoint of this run")
    parser.add_argument("--print-config", action="store_true", help="print the validated config and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # imported after parsing: torch and transformers take seconds, which --help need not wait for
    import torch

    from .train import pipeline
    from .train.backbone import BackboneError

    # force: underthesea configures the root logger when imported, which would make this a no-op
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    try:
        config = load_config(args.config, args.set)
        if args.print_config:
            print(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
            return 0
        if config.train.num_threads:
            torch.set_num_threads(config.train.num_threads)
        if args.cv:
            pipeline.run_cv(config)
        else:
            pipeline.run_once(config, args.resume)
    except (ConfigError, AnnotationError, BackboneError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # checkpoints and an unfinished export are left as after a kill
        print("\ninterrupted: the model directory was not changed; `--resume` continues from the last "
              "complete checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
