"""Stabilization methods as strategies; `_target_: stabilize.strategies.<Name>` in a method config."""
from stabilize.strategies.base import Strategy, build_method
from stabilize.strategies.bertadam import BERTAdam, BertAdamOptimizer

__all__ = ["Strategy", "build_method", "BERTAdam", "BertAdamOptimizer"]
