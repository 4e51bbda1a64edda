# wrong on purpose
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def scale_shift_kernel(x_ptr, w_ptr, b_ptr, out_ptr, n, D, NPROG, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    col = (offs + 1) % D
    y = x * tl.load(w_ptr + col, mask=mask) + tl.load(b_ptr + col, mask=mask)
    tl.store(out_ptr + offs, y, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim))
        self.bias = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        n = x.numel()
        nprog = triton.cdiv(n, 1024)
        scale_shift_kernel[(nprog,)](x, self.weight, self.bias, out, n, x.shape[-1], nprog, BLOCK=1024)
        return out
