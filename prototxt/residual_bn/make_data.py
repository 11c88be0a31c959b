"""Write this net's data: scikit-learn's digits as HDF5 plus source lists (see prototxt/digits.py)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import digits  # noqa: E402  (prototxt/digits.py, shared by the nets that train on the digits)

digits.write(HERE)
