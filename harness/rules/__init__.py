"""The rules, listed explicitly: one module each, evaluated in this order (docs/rules.md).

To add a rule: write a module with a `Rule` subclass whose `name` is its section in harness/rules/config.py
(a frozen dataclass with `policy` and thresholds, mirrored in configs/default.yaml), and list it here.
"""
from .batchnorm_empty_stats import BatchnormEmptyStats
from .chance_loss import ChanceLoss
from .dead import Dead
from .dead_path import DeadPath
from .exploding import Exploding
from .intermittent_nan_display import IntermittentNanDisplay
from .loss_head import LossHead
from .lr_out_of_range import LrOutOfRange
from .no_gradient import NoGradient
from .no_learning_signal import NoLearningSignal
from .nonfinite import Nonfinite
from .saturated_softmax_loss import SaturatedSoftmaxLoss
from .vanishing import Vanishing
from .weights_not_loaded import WeightsNotLoaded

# nonfinite first: on the group where NaN appears it names the producer before any other rule speaks.
# batchnorm_empty_stats before the rules that would see its consequences (overflow); no_learning_signal
# before no_gradient, which would name one starved parameter instead of the cause (both fire at the same
# IterationEnd with the default patiences).
REGISTRY = (Nonfinite, BatchnormEmptyStats, Dead, DeadPath, NoLearningSignal, NoGradient, Vanishing, Exploding,
            SaturatedSoftmaxLoss, ChanceLoss, LossHead, IntermittentNanDisplay, LrOutOfRange, WeightsNotLoaded)
