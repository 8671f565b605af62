"""Grading a class: nbgrader's autograde per submission, sandboxed, spread over Dask workers.

- :mod:`~tlcourse_tools.grading.course`: an nbgrader course directory built from the repository;
- :mod:`~tlcourse_tools.grading.sandbox`: the kernel's sandbox (namespaces, uid, limits);
- :mod:`~tlcourse_tools.grading.kernel`: the grader's side of it, and nbgrader's Execute inside it;
- :mod:`~tlcourse_tools.grading.worker`: grade one submission (a Dask task);
- :mod:`~tlcourse_tools.grading.batch`: find submissions, run them on Dask, resume, write the gradebook;
- :mod:`~tlcourse_tools.grading.report`: the class report (``report.html``).

Everything here needs the ``grading`` extra: ``pip install -e "tools[grading]"``.
"""

from __future__ import annotations

__all__ = ["grade"]


def __getattr__(name: str):
    # Lazy: the sandbox launcher (``python -m tlcourse_tools.grading.sandbox``) imports this package
    # and must start in milliseconds, without nbgrader or Dask.
    if name == "grade":
        from tlcourse_tools.grading.batch import grade

        return grade
    raise AttributeError(f"module 'tlcourse_tools.grading' has no attribute {name!r}")
