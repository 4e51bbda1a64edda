#!/usr/bin/env bash
# Run HERE, once, before the one call on the GPU machine (which cannot download anything).
# Puts into .whl/ (git-ignored): wheels of assay's one dependency the device image lacks
# (pydantic, with its own dependencies) for the image's Python 3.12 and for this machine's Python
# (so device_run.sh can be tried here first), and Debian's bubblewrap package, unpacked there
# when the image has no bwrap.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
here=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
for pyver in 3.12 "$here"; do
  python3 -m pip download -q --only-binary=:all: --implementation cp --python-version "$pyver" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl pydantic
done
if ! ls .whl/bubblewrap_*.deb >/dev/null 2>&1; then
  (cd .whl && apt-get download bubblewrap)
fi
ls -l .whl
echo "now: run(carry=[\".whl\"], timeout_s=600, command=\"bash benches/kernels/device_run.sh\")"
