# correct: fp16 GEMM with bias, GELU and scale fused into the epilogue
import torch
import torch.nn as nn
import triton
import triton.language as tl

# 128x256x64 tiles, 8 warps, 3 stages: not yet measured on the H200, where 128x128 tiles ran this
# GEMM at ~390 TFLOP/s (0.70 ms, eager 0.52 ms); benches/kernels/gemm_sweep.py measures the others
CONFIG = dict(BM=128, BN=256, BK=64, num_warps=8, num_stages=3)


@triton.jit
def gemm_gelu_kernel(a_ptr, w_ptr, bias_ptr, c_ptr, M, N, K, scale,
                     BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BM)
    num_pid_n = tl.cdiv(N, BN)
    num_pid_in_group = GROUP_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_M
    group_size_m = tl.minimum(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    # rows past M and columns past N wrap around instead of being masked (the store drops them),
    # so the loads are masked along K only
    a_ptrs = a_ptr + (rm % M)[:, None] * K + rk[None, :]
    w_ptrs = w_ptr + (rn % N)[None, :] * K + rk[:, None]  # W is [N, K]: a [BK, BN] tile of W^T
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BK)):
        a = tl.load(a_ptrs, mask=rk[None, :] < K - k * BK, other=0.0)
        b = tl.load(w_ptrs, mask=rk[:, None] < K - k * BK, other=0.0)
        acc += tl.dot(a, b)
        a_ptrs += BK
        w_ptrs += BK
    acc += tl.load(bias_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)[None, :]
    # eager rounds the linear output to fp16 before GELU; do the same so the results agree
    h = acc.to(tl.float16).to(tl.float32)
    y = 0.5 * h * (1.0 + tl.erf(h * 0.7071067811865476)) * scale
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], y.to(tl.float16), mask=(rm[:, None] < M) & (rn[None, :] < N))


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        # nn.Linear only holds the weights (same init as the reference); its forward is never called
        self.linear = nn.Linear(in_features, out_features).half()
        self.scale = scale

    def forward(self, x):
        x = x.contiguous()
        M, K = x.shape
        w = self.linear.weight
        N = w.shape[0]
        out = torch.empty((M, N), device=x.device, dtype=x.dtype)
        bm, bn, bk = CONFIG["BM"], CONFIG["BN"], CONFIG["BK"]
        grid = (triton.cdiv(M, bm) * triton.cdiv(N, bn),)
        gemm_gelu_kernel[grid](x, w, self.linear.bias, out, M, N, K, self.scale, BM=bm, BN=bn, BK=bk,
                               GROUP_M=8, num_warps=CONFIG["num_warps"], num_stages=CONFIG["num_stages"])
        return out
