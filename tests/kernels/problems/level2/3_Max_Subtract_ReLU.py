import torch
import torch.nn as nn


class Model(nn.Module):
    """The maximum over features, minus its own mean over a dimension of size 1, then ReLU: zero
    whatever the input (as in KernelBench's level-2 problem 80, Gemm_Max_Subtract_GELU)."""

    def __init__(self):
        super(Model, self).__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max(x, dim=1, keepdim=True).values
        x = x - x.mean(dim=1, keepdim=True)
        return torch.relu(x)


batch_size = 16
dim = 1024


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
