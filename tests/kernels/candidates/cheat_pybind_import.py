# expected gate rule: dynamic-code
# The C++ "kernel" imports torch.nn.functional through pybind11 and calls its relu.
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_src = r"""
#include <pybind11/pybind11.h>
namespace py = pybind11;
torch::Tensor relu_cpu(torch::Tensor x) {
    py::object F = py::module_::import("torch.nn.functional");
    return F.attr("relu")(x).cast<torch::Tensor>();
}
"""
relu_ext = load_inline(name="relu_cpu_py", cpp_sources=cpp_src, functions=["relu_cpu"], verbose=False)


class ModelNew(nn.Module):
    def forward(self, x):
        return relu_ext.relu_cpu(x)
