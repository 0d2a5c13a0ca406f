"""Process-wide test set-up: runs before Django reads its settings."""

import os

# Tests run with production settings (DEBUG off); only the key is a throw-away one.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-never-used-in-production")
os.environ.setdefault("SECURE_COOKIES", "0")
