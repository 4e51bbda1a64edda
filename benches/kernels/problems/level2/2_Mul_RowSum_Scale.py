import torch
import torch.nn as nn

# Inputs are made on the GPU when there is one (host randn of 2 GiB takes seconds per call).
_dev = "cuda" if torch.cuda.is_available() else "cpu"


class Model(nn.Module):
    """(x * w).sum(dim=1) * scale: a weighted row reduction."""

    def __init__(self, dim, scale):
        super().__init__()
        self.w = nn.Parameter(torch.randn(dim) * 0.01)
        self.scale = scale

    def forward(self, x):
        return (x * self.w).sum(dim=1) * self.scale


batch_size = 65536
dim = 8192
scale = 2.0


def get_inputs():
    return [torch.randn(batch_size, dim, device=_dev)]


def get_init_inputs():
    return [dim, scale]
