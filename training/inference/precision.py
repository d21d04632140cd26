"""Which number format a model runs in on this machine, and why.

`int8` (opt-in, CPU) runs the encoder's linear layers in dynamic int8.
`auto` picks the faster of fp32 and bf16 by what the hardware does well: bf16 where the
CPU multiplies bf16 in hardware (AMX, or AVX512-BF16) or the GPU supports it, fp32
elsewhere, where bf16 is emulated and slower than fp32. The measurements behind this
rule are in docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

HARDWARE_BF16 = ("amx_bf16", "avx512_bf16")
PRECISIONS = ("auto", "fp32", "bf16", "int8")


@dataclass(frozen=True)
class Precision:
    dtype: torch.dtype
    reason: str
    int8: bool = False  # fp32 with the encoder's linear layers in dynamic int8 (opt-in, CPU only)

    @property
    def name(self) -> str:
        return "int8" if self.int8 else "bf16" if self.dtype == torch.bfloat16 else "fp32"

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def cpu_bf16_flags() -> list[str]:
    """Which hardware bf16 paths this CPU has (Linux): `amx_bf16`, `avx512_bf16`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            info = handle.read()
    except OSError:
        return []
    return [flag for flag in HARDWARE_BF16 if flag in info]


def choose_precision(precision: str, device: torch.device, cpu_flags: list[str] | None = None) -> Precision:
    """`fp32`, `bf16`, or `auto`: the faster of the two on `device` (see the module docstring)."""
    if precision == "fp32":
        return Precision(torch.float32, "asked for")
    if precision == "bf16":
        return Precision(torch.bfloat16, "asked for")
    if precision == "int8":
        if device.type != "cpu":
            raise ValueError("precision 'int8' (dynamic quantisation) runs on the CPU only")
        return Precision(torch.float32, "asked for: linear layers in dynamic int8", int8=True)
    if precision != "auto":
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, not {precision!r}")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16, "auto: the GPU supports bf16")
        return Precision(torch.float32, "auto: the GPU has no bf16")
    flags = cpu_bf16_flags() if cpu_flags is None else cpu_flags
    hardware = [flag for flag in HARDWARE_BF16 if flag in flags]
    if hardware:
        return Precision(torch.bfloat16, f"auto: the CPU has {' and '.join(hardware)}")
    return Precision(torch.float32, "auto: the CPU has no hardware bf16, where bf16 is slower than fp32")


def quantize_linear_layers(module: torch.nn.Module) -> torch.nn.Module:
    """`module`'s linear layers, in place, with int8 weights and activations quantised per
    batch at run time. Opt-in, not `auto`: it changes the numbers (entities agreed on the
    benchmark model, docs/benchmarks.md), and torch marks this API deprecated."""
    import warnings

    with warnings.catch_warnings():  # torch's deprecation notices, once per layer
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
