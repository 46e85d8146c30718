"""Regenerates README.md's flag tables from the option declarations.

    python scripts/readme_tables.py

tests/test_readme.py fails when the README's tables and the declarations differ.
"""

import os
import runpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
runpy.run_path(os.path.join(ROOT, "__init__.py"))

from kerasrun.cli.config import all_groups  # noqa: E402
from kerasrun.cli.docs import markdown_tables, update_readme  # noqa: E402

if __name__ == "__main__":
    update_readme(os.path.join(ROOT, "README.md"), markdown_tables(all_groups()))
