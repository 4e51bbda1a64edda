#!/usr/bin/env bash
# The one call on the GPU machine (see README.md): install the wheels device_prepare.sh put in
# .whl/, put the carried bubblewrap on PATH where the image has none, then run the validation
# (--sandbox-fallback: a sandbox that cannot use the GPU fails one check, not the whole call).
# Arguments go to gpu_validate.py; results go to $OUT (the device tool's folder) or benches/results.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
site=$(mktemp -d /tmp/assay-site.XXXX)
"$PY" -m pip install -q --no-index --no-compile --find-links .whl --target "$site" pydantic
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! command -v bwrap >/dev/null 2>&1; then
  dpkg -x .whl/bubblewrap_*.deb /tmp/assay-bw
  export PATH="/tmp/assay-bw/usr/bin:$PATH"
fi
echo "python: $("$PY" -c 'import sys, torch, triton; print(sys.version.split()[0], "torch", torch.__version__, "triton", triton.__version__)')"
echo "compilers: CC=${CC:-} CXX=${CXX:-} (the sandbox binds their install roots read-only)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader
fi
exec "$PY" benches/kernels/gpu_validate.py --sandbox-fallback --out "${OUT:-benches/results}" "$@"
