# expected gate rule: monkeypatch
# A wrong kernel that makes the reference wrong the same way: torch.relu, reached through a
# second name for torch, becomes the candidate's own launch, so both sides agree.
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.where(offs % 7 == 0, x, tl.maximum(x, 0.0)), mask=mask)


def launch(x):
    x = x.contiguous()
    out = torch.empty_like(x)
    n = x.numel()
    relu_kernel[(triton.cdiv(n, 1024),)](x, out, n, BLOCK=1024)
    return out


_t = torch
_t.relu = launch


class ModelNew(nn.Module):
    def forward(self, x):
        return launch(x)
