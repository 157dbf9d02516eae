#!/usr/bin/env bash
# Download (here, where PyPI is reachable) the wheels the GPU machine lacks for
# benchmarks/throughput.py, into .whl/ (git-ignored via .git/info/exclude). Python 3.12,
# manylinux x86-64, no dependencies resolved: the list is what the benchmark imports beyond
# the device image's packages (see docs/benchmarks.md). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qxF '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
      --platform manylinux1_x86_64 --platform any)
for req in lm_eval==0.4.13 transformers==5.24.0 datasets==5.2.0 dill==0.4.0 multiprocess==0.70.18 \
           pydicom==3.0.2 nibabel==5.4.2 sqlitedict==2.1.0 word2number==1.1 \
           more_itertools==10.8.0; do
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${PLAT[@]}" -d .whl "$req" \
    || python3 -m pip download --no-deps --python-version 3.12 -d .whl "$req"
done
du -sh .whl
