"""Every `stabilize-train` command in the READMEs composes and passes the one validation pass
(sweep values: the first of each); commands on the user's own files are run by their own tests
(test_tasks.py, test_user_strategy.py, test_intermediate.py)."""
import re
import shlex

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import open_dict

from stabilize.config import validate
from stabilize.train import CONF_DIR
from tests.conftest import ROOT

READMES = [ROOT / "README.md", *sorted((ROOT / "experiments").glob("*/README.md"))]
COMMAND = re.compile(r"stabilize-train([^`\n#]*)")
USER_FILES = "$PWD"  # a user's own folder: run by that feature's test


def _commands():
    for path in READMES:
        text = path.read_text().replace("\\\n", " ")
        variables = dict(re.findall(r'^(\w+)="([^"]*)"$', text, flags=re.M))
        for m in COMMAND.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            args = re.sub(r"\$(\w+)", lambda v: variables.get(v.group(1), v.group(0)), m.group(1))
            yield pytest.param(args, id=f"{path.relative_to(ROOT)}:{line}")


def _first_values(args: str) -> list[str]:
    tokens = [t for t in shlex.split(args.replace("<p>", "p")) if t not in ("-m", "...")]
    out = []
    for o in OverridesParser.create().parse_overrides(tokens):
        value = next(o.sweep_string_iterator()) if o.is_sweep_override() else o.get_value_element_as_str()
        out.append(f"{o.get_key_element()}={value}")
    return out


@pytest.mark.parametrize("args", list(_commands()))
def test_readme_command_composes_and_validates(tmp_path, args):
    if USER_FILES in args:
        pytest.skip("runs on a user's own files: see that feature's test")
    overrides = _first_values(args)
    if any(o.startswith("hydra/launcher=submitit") for o in overrides):
        pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    if any(o.startswith("+hpo=") for o in overrides):
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.threads = None
    validate(cfg)
