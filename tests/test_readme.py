"""The README's promises: commands, and flag tables that match the declarations."""

import os

from conftest import REPO
from kerasrun.cli.config import all_groups
from kerasrun.cli.docs import markdown_tables, readme_tables


def readme():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as stream:
        return stream.read()


def test_flag_tables_match_the_declarations():
    assert readme_tables(readme()) == markdown_tables(all_groups()), "run: python scripts/readme_tables.py"


def test_readme_shows_install_train_and_test_commands():
    text = readme()
    for command in ("pip install -r requirements.txt", "python train.py", "python -m pytest"):
        assert f"    {command}\n" in text
