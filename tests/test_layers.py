"""The Flask boundary holds at import time, not only in the source.

import-linter (run by .ci/run) checks the import statements; this test checks
what really gets loaded: importing any plain module of the product, in a fresh
interpreter, loads neither Flask, a Flask extension nor Werkzeug. The workers,
the commands' plain parts and the tests can then use them without a web app.
"""
from __future__ import annotations

import pkgutil
import subprocess
import sys

import wizard

# The boundary named by the restructuring issue: the factory (the package itself),
# configuration, extensions, the database glue, the CLI, the web layer and the commands;
# and the local test sign-in server, a Flask app of its own beside the commands.
FLASK_SIDE = ("wizard.web", "wizard.commands", "wizard.db", "wizard.cli", "wizard.config", "wizard.extensions",
              "wizard.devsignin")

PROBE = """
import importlib, sys
def flask_loaded():
    return sorted(name for name in sys.modules
                  if name.split(".")[0] in ("flask", "werkzeug") or name.startswith("flask_"))
for name in sys.argv[1:]:
    importlib.import_module(name)
    if flask_loaded():
        print(name, *flask_loaded()[:3])
        sys.exit(1)
"""


def plain_modules() -> list[str]:
    return sorted(
        info.name for info in pkgutil.walk_packages(wizard.__path__, "wizard.")
        if not info.name.startswith(FLASK_SIDE)
    )


def test_there_are_plain_modules_to_check():
    names = plain_modules()
    assert {"wizard.smtp.probe", "wizard.outbox.worker", "wizard.setup.drafts", "wizard.models"} <= set(names)


def test_no_plain_module_loads_flask_when_imported():
    result = subprocess.run([sys.executable, "-c", PROBE, *plain_modules()], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"imports Flask at import time: {result.stdout or result.stderr}"


def test_the_check_notices_a_module_that_loads_flask():
    result = subprocess.run([sys.executable, "-c", PROBE, "wizard.smtp.probe", "wizard.web.forms"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout.startswith("wizard.web.forms")
