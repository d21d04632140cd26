"""What could raise predict()'s ceiling: the encoder forward under other runtimes.

On exactly the padded batches predict() runs (`length_batches` with its defaults; the
five articles x `--copies`), fp32, one process: PyTorch eager attention, PyTorch SDPA attention (what
predict() uses), `torch.compile` (inductor, dynamic shapes) and ONNX Runtime
(`torch.onnx.export`, CPU execution provider, all graph optimisations) and dynamic int8
quantisation of the linear layers (what `precision="int8"` does; torch marks the API
deprecated). Each row reports
its time, its rate against the SDPA row, and the largest difference of its logits from
the SDPA row's together with how many first-token argmaxes differ, so that "faster"
is only read at equal output. Intel's extension for PyTorch has no build for torch 2.13
(its last release, 2.8, pins torch 2.8) and is not measured.

    pip install onnxruntime onnx onnxscript   # for the ONNX Runtime row; skipped if absent
    python -m benchmarks.forward_backends [--model DIR] [--copies 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.common import article_texts, base_sized_model, encoder_passes, machine, timed
from training.common.tables import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="exported model dir (default: the base-geometry benchmark model)")
    parser.add_argument("--copies", type=int, default=1, help="copies of the five articles")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForTokenClassification

    from training import load_model
    from training.inference.precision import quantize_linear_layers

    model_dir = Path(args.model or base_sized_model())
    passes = encoder_passes(load_model(model_dir, precision="fp32"), article_texts(args.copies))
    tokens, batches = passes.tokens, passes.batches
    print(machine())
    print(f"model: {model_dir}; {len(batches)} batches, {tokens} tokens; fp32; best of {args.repeat}\n", flush=True)

    def torch_runner(module):
        def run():
            with torch.inference_mode():
                return [module(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.float()
                        for b in batches]
        return run

    def encoder(attention: str):
        return AutoModelForTokenClassification.from_pretrained(model_dir, attn_implementation=attention).eval()

    runners = {"eager attention": torch_runner(encoder("eager")), "SDPA attention": torch_runner(encoder("sdpa"))}
    runners["dynamic int8 linear layers"] = torch_runner(quantize_linear_layers(encoder("sdpa")))
    compiled = torch.compile(encoder("sdpa"), dynamic=True)
    runners["torch.compile (inductor, dynamic)"] = torch_runner(compiled)
    onnx_runner = onnx_runtime_runner(encoder("sdpa"), batches)
    if onnx_runner is not None:
        runners["ONNX Runtime (CPU, all optimisations)"] = onnx_runner

    results = {}
    for name, run in runners.items():
        outputs = run()  # warm-up; for torch.compile this compiles
        _, seconds = timed(run, args.repeat)
        results[name] = (outputs, seconds)
        print(f"  {name}: {seconds:.2f} s", file=sys.stderr, flush=True)

    base_outputs, base_seconds = results["SDPA attention"]
    rows = []
    for name, (outputs, seconds) in results.items():
        diff = max(float((a - b).abs().max()) for a, b in zip(outputs, base_outputs))
        real = [b["attention_mask"].bool() for b in batches]
        flips = sum(int((a.argmax(-1) != b.argmax(-1))[m].sum()) for a, b, m in zip(outputs, base_outputs, real))
        rows.append([name, seconds, tokens / seconds, base_seconds / seconds, f"{diff:.2e}", flips])
    print(Table(["runtime", "seconds", "tokens/s", "x SDPA", "max |logit diff|", "argmax changes"], rows))


def onnx_runtime_runner(module, batches):
    """The encoder exported to ONNX and run by ONNX Runtime, or None (printed why)."""
    try:
        import onnxruntime
        import torch
    except ImportError as exc:
        print(f"ONNX Runtime row skipped: {exc}", file=sys.stderr)
        return None
    path = Path(tempfile.mkdtemp()) / "encoder.onnx"
    # a sample with both dimensions above 1: torch.export specialises a dimension of size 1
    sample = max(batches, key=lambda b: min(b["input_ids"].shape))
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=258)
    torch.onnx.export(module, (), str(path), kwargs={"input_ids": sample["input_ids"],
                                                     "attention_mask": sample["attention_mask"]},
                      input_names=["input_ids", "attention_mask"], output_names=["logits"],
                      dynamic_shapes={"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}},
                      dynamo=True)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run():
        return [torch.from_numpy(session.run(["logits"], {"input_ids": b["input_ids"].numpy(),
                                                          "attention_mask": b["attention_mask"].numpy()})[0])
                for b in batches]
    return run


if __name__ == "__main__":
    main()
