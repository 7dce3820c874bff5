"""The files shipped inside the package (the JSON Schema, the dashboard, the example INI,
the OpenAPI document) load however the package was found.

From a source tree on ``PYTHONPATH`` in which ``ocsd/receiver`` is found as a namespace
package (copied without its ``__init__.py``, as a receiver's own project may vendor the
toolkit), ``importlib.resources.files`` gives a MultiplexedPath, whose ``joinpath`` takes
one name in Python 3.11: ``joinpath("schema", name)`` raised TypeError on the first
validation.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import ocsd

PROBE = """
import ocsd.receiver, importlib.resources as r
print(type(r.files("ocsd.receiver")).__name__)
from ocsd.receiver.validate import is_valid, load_schema, schema_text
assert load_schema()["$schema"].endswith("2020-12/schema"), "schema loaded"
assert schema_text().startswith("{")
print(is_valid({}), ocsd.receiver.__path__)
"""


def test_schema_loads_from_a_source_tree_where_the_toolkit_is_a_namespace(
    tmp_path: Path,
) -> None:
    source = Path(ocsd.__file__).parent
    tree = tmp_path / "checkout"
    shutil.copytree(source, tree / "ocsd", ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "ocsd" / "receiver" / "__init__.py").unlink()

    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    kind, verdict = done.stdout.splitlines()[0], done.stdout.splitlines()[1]
    assert kind == "MultiplexedPath", "the namespace case this test is about"
    assert verdict.startswith("False") and str(tree) in verdict
