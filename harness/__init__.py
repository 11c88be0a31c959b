"""caffe-harness: train real Caffe models and find where and why training breaks.

The stages, in the order data flows (docs/architecture.md): core (shared records) -> log and run (Caffe's
output and Caffe itself) -> rules (findings, verdict) -> report; commands drives them.
"""
