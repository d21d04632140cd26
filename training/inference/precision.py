"""Which number format a model runs in on this machine, and why.

`auto` picks the faster of fp32 and bf16 by what the hardware does well: bf16 where the
CPU multiplies bf16 in hardware (AMX, or AVX512-BF16) or the GPU supports it, fp32
elsewhere, where bf16 is emulated and slower than fp32. The measurements behind this
rule are in docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

HARDWARE_BF16 = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class Precision:
    dtype: torch.dtype
    reason: str

    @property
    def name(self) -> str:
        return "bf16" if self.dtype == torch.bfloat16 else "fp32"

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
    if precision != "auto":
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', not {precision!r}")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16, "auto: the GPU supports bf16")
        return Precision(torch.float32, "auto: the GPU has no bf16")
    flags = cpu_bf16_flags() if cpu_flags is None else cpu_flags
    hardware = [flag for flag in HARDWARE_BF16 if flag in flags]
    if hardware:
        return Precision(torch.bfloat16, f"auto: the CPU has {' and '.join(hardware)}")
    return Precision(torch.float32, "auto: the CPU has no hardware bf16, where bf16 is slower than fp32")
