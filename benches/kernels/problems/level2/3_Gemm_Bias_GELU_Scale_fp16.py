import torch
import torch.nn as nn

# Inputs are made on the GPU when there is one (host randn of 2 GiB takes seconds per call).
_dev = "cuda" if torch.cuda.is_available() else "cpu"


class Model(nn.Module):
    """Linear (fp16) followed by GELU and a scale."""

    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features).half()
        self.scale = scale

    def forward(self, x):
        return torch.nn.functional.gelu(self.linear(x)) * self.scale


batch_size = 8192
in_features = 2048
out_features = 8192
scale = 0.5


def get_inputs():
    return [torch.randn(batch_size, in_features, device=_dev).half()]


def get_init_inputs():
    return [in_features, out_features, scale]
