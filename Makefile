# The README's two commands: `make demo` and `make test`. Each sets everything up first (scripts/setup.sh:
# Debian packages, cached Caffe build, .venv); a warm setup takes seconds.
.PHONY: setup setup-cuda bundle-cuda demo test docker-cpu

setup:
	bash scripts/setup.sh

# The CUDA build (docs/gpu.md) in its own cache folder and .venv-cuda; the CPU build and .venv stay as they are.
setup-cuda:
	CAFFE_CUDA=1 VENV=.venv-cuda bash scripts/setup.sh

# dist/caffe-harness-cuda.tar.xz: Python, the project, the CUDA and CPU builds of Caffe and every library they need,
# for GPU machines without root, Docker or a compiler (docs/gpu.md). Both builds are made without OpenCV (to fit
# 48 MiB), in cache entries of their own: the script finds or builds them with CAFFE_OPENCV=0 scripts/setup.sh.
# CUDA_ARCH_BIN=90 builds for H100/H200 only.
bundle-cuda: setup
	.venv/bin/python scripts/bundle-cuda.py

demo: setup
	.venv/bin/python prototxt/digits_healthy/make_data.py
	.venv/bin/harness train prototxt/digits_healthy/solver.prototxt

# tests/ one after another; then the zoo (prototxt/) through the pytest plugin, two nets at a time (docs/zoo.md).
test: setup
	.venv/bin/python -m pytest -q tests
	.venv/bin/python -m pytest -q -n 2 --dist loadgroup prototxt

# Build Dockerfile.cpu (Docker engine, else podman); run `harness doctor` and the zoo check inside the image.
docker-cpu:
	bash scripts/docker-check.sh sh -c 'harness doctor && harness check prototxt/'
