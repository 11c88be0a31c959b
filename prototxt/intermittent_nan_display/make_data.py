"""Write this net's data (prototxt/negative_batch.py): batch 6 holds only negatives, so the forward of BalancedLoss divides 0 by 0 in iteration 6 (its backward does not)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import negative_batch  # noqa: E402  (prototxt/negative_batch.py, shared by the nets that need it)

negative_batch.write(HERE)
