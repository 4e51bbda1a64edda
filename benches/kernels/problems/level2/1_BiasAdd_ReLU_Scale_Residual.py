import torch
import torch.nn as nn

# Inputs are made on the GPU when there is one (host randn of 2 GiB takes seconds per call).
_dev = "cuda" if torch.cuda.is_available() else "cpu"


class Model(nn.Module):
    """relu(x + bias) * scale + x."""

    def __init__(self, dim, scale):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(dim))
        self.scale = scale

    def forward(self, x):
        return torch.relu(x + self.bias) * self.scale + x


batch_size = 32768
dim = 16384
scale = 0.75


def get_inputs():
    return [torch.randn(batch_size, dim, device=_dev)]


def get_init_inputs():
    return [dim, scale]
