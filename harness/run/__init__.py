"""What touches Caffe: loading the solver and writing the effective one, the worker process that steps the
solver through pycaffe and measures every blob, the supervisor that watches it, the build, the GPU probe,
inputs and dumps, and what a replay needs (provenance, record comparison)."""
