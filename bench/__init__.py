"""The benchmark library: measures the performance figures of quality.md as ratios against
baselines taken in the same run. It knows nothing of the command line (``xinfang bench`` is
``cli/bench_command.py``, which renders these figures).

* :func:`run_bench` — every figure for one backend (``sqlite`` or ``postgresql``), with the
  raw rates behind each ratio;
* :data:`TARGETS` — figure → (comparison, target), in report order; :func:`meets` judges one;
* :class:`Sizes`, :data:`QUICK`, :data:`FULL` — how big the measured ledgers grow.
"""

from bench.runner import FULL, QUICK, TARGETS, Sizes, meets, run_bench

__all__ = ["FULL", "QUICK", "TARGETS", "Sizes", "meets", "run_bench"]
