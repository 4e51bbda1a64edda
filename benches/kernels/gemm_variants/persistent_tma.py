# correct: fp16 GEMM with bias, GELU and scale fused into the epilogue, as a persistent kernel
# (one program per SM walks the output tiles) whose tiles move by TMA (tensor descriptors).
# A variant for benches/kernels/gemm_sweep.py to measure beside fast.py's; written as a whole
# candidate so that, if it measures faster, it can replace fast.py as it is.
import torch
import torch.nn as nn
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

CONFIG = dict(BM=128, BN=256, BK=64, num_warps=8, num_stages=3)


@triton.jit
def gemm_gelu_tma_kernel(a_desc, w_desc, bias_ptr, c_desc, M, N, K, scale,
                         BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP_M: tl.constexpr,
                         PROGRAMS: tl.constexpr):
    num_pid_m = tl.cdiv(M, BM)
    num_pid_n = tl.cdiv(N, BN)
    num_pid_in_group = GROUP_M * num_pid_n
    for tile in tl.range(tl.program_id(0), num_pid_m * num_pid_n, PROGRAMS, flatten=True):
        group_id = tile // num_pid_in_group
        first_pid_m = group_id * GROUP_M
        group_size_m = tl.minimum(num_pid_m - first_pid_m, GROUP_M)
        pid_m = first_pid_m + (tile % group_size_m)
        pid_n = (tile % num_pid_in_group) // group_size_m
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for k in range(0, tl.cdiv(K, BK)):
            a = a_desc.load([pid_m * BM, k * BK])  # past the edges TMA reads zeros
            w = w_desc.load([pid_n * BN, k * BK])  # W is [N, K]
            acc = tl.dot(a, w.T, acc)
        rn = pid_n * BN + tl.arange(0, BN)
        acc += tl.load(bias_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)[None, :]
        # eager rounds the linear output to fp16 before GELU; do the same so the results agree
        h = acc.to(tl.float16).to(tl.float32)
        y = 0.5 * h * (1.0 + tl.erf(h * 0.7071067811865476)) * scale
        c_desc.store([pid_m * BM, pid_n * BN], y.to(tl.float16))  # TMA drops what is past the edges


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        # nn.Linear only holds the weights (same init as the reference); its forward is never called
        self.linear = nn.Linear(in_features, out_features).half()
        self.scale = scale
        # one program per SM (4 under Triton's CPU interpreter, so that each still walks tiles)
        self.programs = (torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count
                         if torch.cuda.is_available() else 4)

    def forward(self, x):
        x = x.contiguous()
        M, K = x.shape
        w = self.linear.weight
        N = w.shape[0]
        out = torch.empty((M, N), device=x.device, dtype=x.dtype)
        bm, bn, bk = CONFIG["BM"], CONFIG["BN"], CONFIG["BK"]
        tiles = triton.cdiv(M, bm) * triton.cdiv(N, bn)
        programs = min(self.programs, tiles)
        gemm_gelu_tma_kernel[(programs,)](
            TensorDescriptor.from_tensor(x, [bm, bk]), TensorDescriptor.from_tensor(w, [bn, bk]),
            self.linear.bias, TensorDescriptor.from_tensor(out, [bm, bn]), M, N, K, self.scale,
            BM=bm, BN=bn, BK=bk, GROUP_M=8, PROGRAMS=programs,
            num_warps=CONFIG["num_warps"], num_stages=CONFIG["num_stages"])
        return out
