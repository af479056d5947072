"""Stabilization methods as strategies; `_target_: stabilize.strategies.<Name>` in a method config."""
from stabilize.strategies.base import Strategy, build_method
from stabilize.strategies.bertadam import BERTAdam, BertAdamOptimizer
from stabilize.strategies.bitfit import BitFit
from stabilize.strategies.childtuning import ChildTuning
from stabilize.strategies.component_clip import ComponentWiseClipping
from stabilize.strategies.ema import EMA
from stabilize.strategies.gradual_unfreeze import GradualUnfreezing
from stabilize.strategies.intermediate import Intermediate
from stabilize.strategies.llrd import LayerwiseLRDecay
from stabilize.strategies.lora import LoRA
from stabilize.strategies.lpft import LPFT
from stabilize.strategies.mixout import MixLinear, Mixout
from stabilize.strategies.noisytune import NoisyTune
from stabilize.strategies.prior_wd import PriorWeightDecay
from stabilize.strategies.r3f import R3F
from stabilize.strategies.reinit import ReInit
from stabilize.strategies.swa import SWA

__all__ = ["Strategy", "build_method", "BERTAdam", "BertAdamOptimizer", "BitFit", "ChildTuning",
           "ComponentWiseClipping", "EMA", "GradualUnfreezing", "Intermediate", "LayerwiseLRDecay", "LoRA",
           "LPFT", "MixLinear", "Mixout", "NoisyTune", "PriorWeightDecay", "R3F", "ReInit", "SWA"]
