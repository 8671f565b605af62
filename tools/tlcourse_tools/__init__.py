"""Tools for the course's maintainers and instructors (not installed with the student package).

- :mod:`tlcourse_tools.authoring`: build ``notebooks/``, ``solutions/`` and ``exercises/`` from ``sources/``;
- :mod:`tlcourse_tools.running`: run a notebook, or the whole course, headless;
- :mod:`tlcourse_tools.progress`: run exercise notebooks and count the checks they pass;
- :mod:`tlcourse_tools.colab`: Colab's runtime as a twin (constraint files, ``make test-colab``);
- :mod:`tlcourse_tools.fashion`: Fashion-MNIST for ``make test`` (and :mod:`~tlcourse_tools.pytest_fashion`,
  the skips when it is missing);
- :mod:`tlcourse_tools.grading`: ``tlcourse grade``, a class autograded with nbgrader, sandboxed, on Dask;
- :mod:`tlcourse_tools.cli`: ``tlcourse build | run | progress | grade | test-env``, ``colab-constraints``,
  ``colab-twin``.
"""
