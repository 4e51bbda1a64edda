import torch
import torch.nn as nn


class Model(nn.Module):
    """out = a * alpha + b (elementwise)."""

    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = alpha

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * self.alpha + b


N = 4096
M = 4096
alpha = 0.5


def get_inputs():
    return [torch.randn(N, M), torch.randn(N, M)]


def get_init_inputs():
    return [alpha]
