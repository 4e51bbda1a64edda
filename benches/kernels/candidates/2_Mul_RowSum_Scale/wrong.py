# wrong on purpose: skips the last column block
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def rowdot_kernel(x_ptr, w_ptr, out_ptr, R, D, scale, BLOCK: tl.constexpr, BR: tl.constexpr):
    row = tl.program_id(0)
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for c in range(0, D - BLOCK, BLOCK):
        cols = c + tl.arange(0, BLOCK)
        m = cols < D
        acc += tl.load(x_ptr + row * D + cols, mask=m, other=0.0) * tl.load(w_ptr + cols, mask=m, other=0.0)
    tl.store(out_ptr + row, tl.sum(acc, axis=0) * scale)


class ModelNew(nn.Module):
    def __init__(self, dim, scale):
        super().__init__()
        self.w = nn.Parameter(torch.randn(dim) * 0.01)
        self.scale = scale

    def forward(self, x):
        x = x.contiguous()
        R, D = x.shape
        out = torch.empty((R,), device=x.device, dtype=x.dtype)
        rowdot_kernel[(R,)](x, self.w, out, R, D, self.scale, BLOCK=1024, BR=1)
        return out
