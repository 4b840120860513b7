"""Shared test set-up: a private data cache and results directory per test session."""

import os
import tempfile

os.environ.setdefault("DL_COURSE_CACHE", os.path.join(tempfile.gettempdir(), "dl_course_test_cache"))
