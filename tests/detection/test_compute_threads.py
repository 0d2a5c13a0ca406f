"""Worker processes cap torch's and OpenCV's threads (ARGUS_WORKER_THREADS): one camera process
per core beats every process spreading over every core (BENCHMARKS.md, load)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from detection.detectors import limit_compute_threads


def run_python(code: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "."}  # no OMP_NUM_THREADS from the caller
    done = subprocess.run(  # noqa: S603  (our own interpreter)
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_limit_set_before_torch_loads_holds_once_it_does() -> None:
    out = run_python(
        """
        import cv2
        from detection.detectors import limit_compute_threads
        limit_compute_threads(1)
        import torch
        print(torch.get_num_threads(), cv2.getNumThreads())
        """
    )
    assert out == "1 1"


def test_a_limit_set_after_torch_loaded_applies_at_once() -> None:
    out = run_python(
        """
        import torch
        torch.set_num_threads(2)
        from detection.detectors import limit_compute_threads
        limit_compute_threads(1)
        print(torch.get_num_threads())
        """
    )
    assert out == "1"


def test_the_camera_worker_applies_the_setting_before_it_loads_a_detector() -> None:
    out = run_python(
        """
        import os
        os.environ.update(DJANGO_SETTINGS_MODULE="tests.settings", ARGUS_WORKER_THREADS="1", ARGUS_DETECTOR="localizer")
        import django
        django.setup()
        from detection.tasks import worker_detector
        worker_detector()
        import torch
        print(torch.get_num_threads())
        """
    )
    assert out == "1"


def test_zero_threads_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        limit_compute_threads(0)
