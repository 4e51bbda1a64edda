# passes the gate: for a problem whose reference computes with operators alone (a * alpha + b),
# the same operators beside a token Triton launch. Only the op census's budget sees it: the
# reference does no compute of its own beside its operators, so all of them are the kernel's.
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def scale_add_kernel(a_ptr, b_ptr, out_ptr, alpha, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a = tl.load(a_ptr + offs, mask=mask)
    b = tl.load(b_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, a * alpha + b, mask=mask)


def scale_add(a, b, alpha):
    a, b = a.contiguous(), b.contiguous()
    out = torch.empty_like(a)
    scale_add_kernel[(triton.cdiv(a.numel(), 1024),)](a, b, out, alpha, a.numel(), BLOCK=1024)
    return out


class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, a, b):
        scale_add(a[:1], b[:1], self.alpha)  # the token launch
        return a * self.alpha + b
