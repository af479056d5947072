"""Loading the classifier and its tokenizer: a pre-trained checkpoint, or a random model of
any encoder family (`model.random_config.model_type`, default `bert`) built in code."""
import inspect
from functools import cache

from omegaconf import DictConfig, OmegaConf
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, CONFIG_MAPPING


def load(model_cfg: DictConfig, num_labels: int):
    """(model, tokenizer) for `model.path` (a folder or hub id) or `model.random_config`."""
    problem = {"problem_type": "regression"} if num_labels == 1 else {}
    tokenizer = AutoTokenizer.from_pretrained(model_cfg.get("tokenizer") or model_cfg.path)
    if model_cfg.get("random_config") is not None:
        config = random_config(OmegaConf.to_container(model_cfg.random_config), tokenizer,
                               num_labels=num_labels, **problem)
        model = AutoModelForSequenceClassification.from_config(config)
    else:  # config.validate has checked the path
        config = AutoConfig.from_pretrained(model_cfg.path, num_labels=num_labels, **problem)
        model = AutoModelForSequenceClassification.from_pretrained(model_cfg.path, config=config)
    return model, tokenizer


def random_config(keys: dict, tokenizer, **more):
    """The config of family `keys["model_type"]` (default `bert`) with the other `keys` as its
    sizes, and `more` (num_labels, ...). The vocabulary size and the special-token ids come from
    the tokenizer, so every id is inside the vocabulary (ModernBERT's defaults are not): pad,
    cls, sep, and bos/eos (cls/sep where the tokenizer has no bos/eos)."""
    keys = dict(keys)
    model_type = keys.pop("model_type", "bert")  # config.validate has checked it
    t = tokenizer
    ids = {"pad_token_id": t.pad_token_id, "cls_token_id": t.cls_token_id, "sep_token_id": t.sep_token_id,
           "bos_token_id": t.bos_token_id if t.bos_token_id is not None else t.cls_token_id,
           "eos_token_id": t.eos_token_id if t.eos_token_id is not None else t.sep_token_id}
    ids = {k: v for k, v in ids.items() if v is not None}
    return CONFIG_MAPPING[model_type](**{"vocab_size": len(tokenizer), **ids, **keys, **more})


@cache
def _takes_token_types(model_class: type) -> bool:
    return "token_type_ids" in inspect.signature(model_class.forward).parameters


def takes_token_types(model) -> bool:
    """Whether the model's forward has segment ids (BERT, RoBERTa, ELECTRA, DeBERTa; not
    DistilBERT nor ModernBERT)."""
    return _takes_token_types(type(model))
