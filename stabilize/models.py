"""Loading the classifier and its tokenizer: a pre-trained checkpoint, or a random BERT."""
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from stabilize.errors import ConfigError
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, BertConfig


def load(model_cfg: DictConfig, num_labels: int):
    """(model, tokenizer) for `model.path` (a folder or hub id) or `model.random_config`."""
    problem = {"problem_type": "regression"} if num_labels == 1 else {}
    tokenizer = AutoTokenizer.from_pretrained(model_cfg.get("tokenizer") or model_cfg.path)
    if model_cfg.get("random_config") is not None:
        config = BertConfig(vocab_size=len(tokenizer), num_labels=num_labels, **problem,
                            **OmegaConf.to_container(model_cfg.random_config))
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        if Path(model_cfg.path).is_absolute() and not Path(model_cfg.path).is_dir():
            raise ConfigError(f"model.path: no model folder at {model_cfg.path}")
        config = AutoConfig.from_pretrained(model_cfg.path, num_labels=num_labels, **problem)
        model = AutoModelForSequenceClassification.from_pretrained(model_cfg.path, config=config)
    return model, tokenizer
