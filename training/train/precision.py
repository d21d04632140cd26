"""Whether training runs in bf16 (`train.bf16: auto|true|false`)."""

from __future__ import annotations

import torch

from ..inference.precision import cpu_bf16_flags


def use_bf16(setting) -> bool:
    """`auto`: bf16 on GPUs that support it and on CPUs with a hardware bf16 path."""
    if setting != "auto":
        return bool(setting)
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(cpu_bf16_flags())
