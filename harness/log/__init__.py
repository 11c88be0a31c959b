"""Caffe's glog output: the streaming parser (lines -> records) and the cross-check of Caffe's printed values
against the harness's own. Pure Python, no Caffe: live runs and `harness parse` share it."""
