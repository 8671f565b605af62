"""Lesson 09's checks: counting WordPiece tokens, cosine similarity, a linear head on sentence embeddings."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from checkrun import run


@pytest.fixture(scope="module")
def encoder():
    import tlcourse

    return tlcourse.models.text_encoder("minilm", sequence_length=32)


# --------------------------------------------------------------------------- 09.1
def test_09_1_accepts_the_tokenizer_count(capsys, encoder):
    result = run(
        "09.1", capsys, count_tokens=lambda text: len(np.asarray(encoder.tokenizer(text))), encoder=encoder
    )
    assert result.passed, result.message


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        ("with_specials", "counts [CLS] and [SEP]"),
        ("words", "number of words"),
        ("padded", "padded length"),
        ("characters", "number of characters"),
        ("none", "returned None"),
    ],
)
def test_09_1_typical_mistakes(capsys, encoder, answer, hint):
    functions = {
        "with_specials": lambda text: len(np.asarray(encoder.tokenizer(text))) + 2,
        "words": lambda text: len(text.split()),
        "padded": lambda text: encoder.sequence_length,
        "characters": len,
        "none": lambda text: None,
    }
    result = run("09.1", capsys, count_tokens=functions[answer], encoder=encoder)
    assert result.status == "failed" and hint in result.message, result.message


# --------------------------------------------------------------------------- 09.2
def test_09_2_accepts_cosine_similarity(capsys):
    def cosine(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    assert run("09.2", capsys, cosine_similarity=cosine).passed


@pytest.mark.parametrize(
    ("function", "hint"),
    [
        (lambda a, b: float(a @ b), "plain dot product"),
        (lambda a, b: 1 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))), "cosine distance"),
        (lambda a, b: float(a @ b / np.linalg.norm(a)), "one vector's length only"),
        (lambda a, b: np.outer(a, b), "one number"),
        (lambda a, b: float(np.linalg.norm(a - b)), "wrong value"),
    ],
)
def test_09_2_typical_mistakes(capsys, function, hint):
    result = run("09.2", capsys, cosine_similarity=function)
    assert result.status == "failed" and hint in result.message, result.message


# --------------------------------------------------------------------------- 09.3
@pytest.fixture(scope="module")
def train_embeddings(encoder):
    import tlcourse

    texts, labels = tlcourse.data.load("sentiment").arrays("train")
    return encoder.embed([str(t) for t in texts]), labels


def head(*, dim=384, units=2, activation=None, train=None, epochs=100):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(dim,)), keras.layers.Dense(units, activation=activation)])
    if train is not None:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=activation is None))  # fmt: skip
        model.fit(*train, epochs=epochs, batch_size=32, verbose=0)
    return model


def test_09_3_accepts_a_trained_linear_head(capsys, encoder, train_embeddings):
    result = run("09.3", capsys, head=head(train=train_embeddings), encoder=encoder)
    assert result.passed, result.message


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        ({}, "below 0.75"),
        ({"dim": 128}, "takes 128 inputs"),
        ({"units": 3}, "Dense(2)"),
        ({"activation": "softmax", "trained": True}, "activation='softmax'"),
    ],
)
def test_09_3_typical_mistakes(capsys, encoder, train_embeddings, kwargs, hint):
    trained = kwargs.pop("trained", False)
    model = head(train=train_embeddings if trained else None, epochs=5, **kwargs)
    result = run("09.3", capsys, head=model, encoder=encoder)
    assert result.status == "failed" and hint in result.message, result.message


def test_09_3_not_attempted_without_a_head(capsys, encoder):
    assert run("09.3", capsys, encoder=encoder).status == "not_attempted"
