"""Stabilization methods as strategies; `_target_: stabilize.strategies.<Name>` in a method config."""
from stabilize.strategies.base import Strategy, build_method
from stabilize.strategies.bertadam import BERTAdam, BertAdamOptimizer
from stabilize.strategies.component_clip import ComponentWiseClipping
from stabilize.strategies.gradual_unfreeze import GradualUnfreezing
from stabilize.strategies.intermediate import Intermediate
from stabilize.strategies.llrd import LayerwiseLRDecay
from stabilize.strategies.mixout import MixLinear, Mixout
from stabilize.strategies.prior_wd import PriorWeightDecay
from stabilize.strategies.reinit import ReInit

__all__ = ["Strategy", "build_method", "BERTAdam", "BertAdamOptimizer", "ComponentWiseClipping",
           "GradualUnfreezing", "Intermediate", "LayerwiseLRDecay", "MixLinear", "Mixout",
           "PriorWeightDecay", "ReInit"]
