# expected gate rule: output-cache
# Outputs cached in a class attribute, keyed on a few input values: the timing run's rotated
# buffers would all hit it.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_src = r"""
torch::Tensor relu_cpu(torch::Tensor x) {
    auto xc = x.contiguous();
    auto y = torch::empty_like(xc);
    const float* p = xc.data_ptr<float>();
    float* q = y.data_ptr<float>();
    for (int64_t i = 0; i < xc.numel(); ++i) q[i] = p[i] > 0.f ? p[i] : 0.f;
    return y;
}
"""
relu_ext = load_inline(name="relu_cpu_cc", cpp_sources=cpp_src, functions=["relu_cpu"], verbose=False)


class _Memo:
    seen = {}


class ModelNew(nn.Module):
    def forward(self, x):
        key = (tuple(x.shape), float(x.reshape(-1)[0]), float(x.reshape(-1)[-1]))
        if key in _Memo.seen:
            return _Memo.seen[key]
        out = relu_ext.relu_cpu(x)
        _Memo.seen[key] = out
        return out
