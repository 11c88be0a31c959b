"""The rules, listed explicitly: one module each, evaluated in this order (docs/rules.md).

To add a rule: write a module with a `Rule` subclass whose `name` is its section in harness/config.py
(a frozen dataclass with `policy` and thresholds, mirrored in configs/default.yaml), and list it here.
"""
from .dead import Dead
from .exploding import Exploding
from .no_gradient import NoGradient
from .nonfinite import Nonfinite
from .vanishing import Vanishing

# nonfinite first: on the group where NaN appears it names the producer before any other rule speaks.
REGISTRY = (Nonfinite, Dead, NoGradient, Vanishing, Exploding)
