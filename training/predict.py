"""`python -m training.predict --model DIR FILE...`: entities as JSON lines.

Each FILE is one text (`-` or no FILE: standard input); with `--lines` every line is a
text of its own. One JSON object per text: {"source", "line"?, "entities": [{text,
label, start, end, score}]}, offsets into the text exactly as read (UTF-8).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

from .common.atomic import atomic_file
from .inference import ModelLoadError, load_model


def read_inputs(paths: list[str], by_line: bool) -> Iterator[tuple[dict, str]]:
    for path in paths or ["-"]:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", newline="") as handle:
                text = handle.read()
        source = "<stdin>" if path == "-" else path
        if by_line:
            for number, line in enumerate(text.splitlines(), start=1):
                yield {"source": source, "line": number}, line
        else:
            yield {"source": source}, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="UTF-8 text files; '-' or none reads standard input")
    parser.add_argument("--model", required=True, help="exported model directory (models/<run-name>)")
    parser.add_argument("--lines", action="store_true", help="treat every input line as a separate text")
    parser.add_argument("--output", "-o", help="write JSON lines here instead of standard output")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="auto: bf16 where the hardware runs it fast (AMX, AVX512-BF16, bf16 GPUs), "
                             "fp32 elsewhere")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model, precision=args.precision, num_threads=args.threads)
        inputs = list(read_inputs(args.files, args.lines))
    except (ModelLoadError, OSError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.model}: {model.device.type}, {model.precision}", file=sys.stderr)
    results = model.predict([text for _, text in inputs], batch_size=args.batch_size, progress=len(inputs) > 1)
    lines = [json.dumps({**meta, "entities": [e.to_dict() for e in entities]}, ensure_ascii=False) + "\n"
             for (meta, _), entities in zip(inputs, results)]
    if not args.output:
        sys.stdout.writelines(lines)
        return 0
    with atomic_file(Path(args.output)) as staging:  # never a half-written output
        staging.write_text("".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
