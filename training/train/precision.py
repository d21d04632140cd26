"""Whether training runs in bf16 (`train.bf16: auto|true|false`)."""

from __future__ import annotations

import torch

from ..inference.precision import Precision, choose_precision


def training_precision(setting) -> Precision:
    """`auto`: the same rule as prediction's (bf16 where the hardware runs it fast)."""
    if setting != "auto":
        return choose_precision("bf16" if setting else "fp32", torch.device("cpu"))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return choose_precision("auto", device)
