import torch
import torch.nn as nn

# Inputs are made on the GPU when there is one (host randn of 2 GiB takes seconds per call).
_dev = "cuda" if torch.cuda.is_available() else "cpu"


class Model(nn.Module):
    """Per-feature affine transform: x * weight + bias (weight, bias broadcast over rows)."""

    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim))
        self.bias = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        return x * self.weight + self.bias


batch_size = 32768
dim = 16384


def get_inputs():
    return [torch.randn(batch_size, dim, device=_dev)]


def get_init_inputs():
    return [dim]
