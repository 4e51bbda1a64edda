# expected gate rule: output-cache
# Right on the correctness checks (its first 10 calls) and on the check after the timing run (its
# 19th), wrong in between, while it is timed: had the harness checked only outside the timed
# calls, it would be called correct and fast. Counts come from the test's settings.
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.maximum(x, 0.0), mask=mask)


def launch(x):
    x = x.contiguous()
    out = torch.empty_like(x)
    n = x.numel()
    relu_kernel[(triton.cdiv(n, 1024),)](x, out, n, BLOCK=1024)
    return out


_calls = [0]


class ModelNew(nn.Module):
    def forward(self, x):
        _calls[0] += 1
        if 10 < _calls[0] < 19:
            return torch.empty_like(x)
        return launch(x)
