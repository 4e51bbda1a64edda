import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

# No #include <torch/extension.h>: load_inline puts torch/types.h (all this uses) at the top of
# cuda.cu, and through nvcc the whole of extension.h (pybind11, Python.h) tripled this build (115 s
# of 2 cores). The KernelBench-style build with it is gpu_validate's fast_cuda (its dry-run test).
cuda_src = r"""
__global__ void relu_kernel(const float* x, float* y, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
torch::Tensor relu_cuda(torch::Tensor x) {
    auto xc = x.contiguous();
    auto y = torch::empty_like(xc);
    int64_t n = xc.numel();
    relu_kernel<<<(n + 255) / 256, 256>>>(xc.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
cpp_src = "torch::Tensor relu_cuda(torch::Tensor x);"

relu_ext = load_inline(name="relu_ext", cpp_sources=cpp_src, cuda_sources=cuda_src,
                       functions=["relu_cuda"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return relu_ext.relu_cuda(x)
