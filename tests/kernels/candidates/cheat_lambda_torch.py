# expected gate rule: torch-compute
# The work is done by torch.relu inside a module-level lambda that forward calls.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_src = r"""
torch::Tensor ident(torch::Tensor x) { return x; }
"""
ext = load_inline(name="ident_ext2", cpp_sources=cpp_src, functions=["ident"], verbose=False)
_act = lambda x: torch.relu(x)


class ModelNew(nn.Module):
    def forward(self, x):
        return _act(ext.ident(x))
