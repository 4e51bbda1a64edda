import torch
import torch.nn as nn

# Inputs are made on the GPU when there is one (host randn of 2 GiB takes seconds per call).
_dev = "cuda" if torch.cuda.is_available() else "cpu"


class Model(nn.Module):
    """Swish activation: x * sigmoid(x)."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


batch_size = 32768
dim = 16384


def get_inputs():
    return [torch.randn(batch_size, dim, device=_dev)]


def get_init_inputs():
    return []
