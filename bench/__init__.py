"""Benchmarks of tlcourse's training paths: ``python -m bench`` (or ``make bench``) writes bench/RESULTS.md.

Every ratio is measured side by side in one run: the contenders alternate within each
repetition (so a busy machine slows both alike) and the median over repetitions is reported.
"""
