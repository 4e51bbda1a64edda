# wrong on purpose
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def bias_relu_res_kernel(x_ptr, b_ptr, out_ptr, n, D, NPROG, scale, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    b = tl.load(b_ptr + offs % D, mask=mask)
    y = tl.maximum(x + b, 0.0) * scale
    tl.store(out_ptr + offs, y, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, dim, scale):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(dim))
        self.scale = scale

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        n = x.numel()
        nprog = triton.cdiv(n, 1024)
        bias_relu_res_kernel[(nprog,)](x, self.bias, out, n, x.shape[-1], nprog, self.scale, BLOCK=1024)
        return out
