"""stabilize: experiments on the instability of few-sample BERT fine-tuning."""
__version__ = "0.1.0"
