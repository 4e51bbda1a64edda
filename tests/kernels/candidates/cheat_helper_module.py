# expected gate rule: torch-compute
# The work is done by torch.relu inside a helper nn.Module that forward calls; the "kernel" only
# passes its input through.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_src = r"""
torch::Tensor ident(torch::Tensor x) { return x; }
"""
ext = load_inline(name="ident_ext", cpp_sources=cpp_src, functions=["ident"], verbose=False)


class Helper(nn.Module):
    def forward(self, x):
        return torch.relu(x)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.h = Helper()

    def forward(self, x):
        return self.h(ext.ident(x))
