# correct but slow: column-at-a-time, uncoalesced loads
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def rowdot_kernel(x_ptr, w_ptr, out_ptr, R, D, scale, BLOCK: tl.constexpr, BR: tl.constexpr):
    # BR rows per program, one column at a time: lanes read addresses D apart (uncoalesced)
    rows = tl.program_id(0) * BR + tl.arange(0, BR)
    rm = rows < R
    acc = tl.zeros((BR,), dtype=tl.float32)
    for c in range(0, D):
        acc += tl.load(x_ptr + rows * D + c, mask=rm, other=0.0) * tl.load(w_ptr + c)
    tl.store(out_ptr + rows, acc * scale, mask=rm)


class ModelNew(nn.Module):
    def __init__(self, dim, scale):
        super().__init__()
        self.w = nn.Parameter(torch.randn(dim) * 0.01)
        self.scale = scale

    def forward(self, x):
        x = x.contiguous()
        R, D = x.shape
        out = torch.empty((R,), device=x.device, dtype=x.dtype)
        rowdot_kernel[(triton.cdiv(R, 128),)](x, self.w, out, R, D, self.scale, BLOCK=16, BR=128, num_warps=4)
        return out
