"""Loaded at start-up by a script a test runs with this folder on PYTHONPATH (see held_files.py).

Makes the files named in TEST_HELD_FILES behave as on Windows while Excel or Tableau Desktop
holds them open: replacing, renaming or deleting them raises PermissionError with the Win32
error Windows gives, `failures` times (or for ever when absent).
"""

import os

if os.environ.get("TEST_HELD_FILES"):
    import held_files_core  # beside this file, in the folder the test put on PYTHONPATH

    held_files_core.install_from_env()
