"""Which number format a model runs in on this machine."""

from __future__ import annotations

import torch


def cpu_bf16_flags() -> list[str]:
    """Which hardware bf16 paths this CPU has (Linux): `amx_bf16`, `avx512_bf16`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            info = handle.read()
    except OSError:
        return []
    return [flag for flag in ("amx_bf16", "avx512_bf16") if flag in info]


def choose_dtype(precision: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 on GPUs that support it and on CPUs with AMX, fp32 elsewhere."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', not {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if "amx_bf16" in cpu_bf16_flags() else torch.float32
