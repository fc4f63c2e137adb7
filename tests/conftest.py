import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The syscall-site rewriter's proofs (kernel/sitecache.py) are kept for this run of the
# suite only: a fresh clone's first test of a program proves its sites, later ones use
# them, and nothing is left in the user's own cache.
if "KM_SITE_CACHE" not in os.environ:
    os.environ["KM_SITE_CACHE"] = tempfile.mkdtemp(prefix="kt-sites-")
    atexit.register(shutil.rmtree, os.environ["KM_SITE_CACHE"], True)
