"""Checks of lesson 09."""

from __future__ import annotations

import numpy as np

from tlcourse import data
from tlcourse.checks.core import CheckFailed, register
from tlcourse.checks.verify import expect_accuracy, expect_logits, expect_model, ints_like

AT_LEAST_09 = 0.75
SENTENCES_09 = (
    "The unboxing was underwhelming.",
    "Great phone!",
    "I would not buy this kettle again, it leaks everywhere.",
)


@register("09.1")
def check_09_1(count_tokens, encoder) -> str:
    """A function counting the WordPiece tokens of a text (without [CLS], [SEP] or padding)."""

    if not callable(count_tokens):
        raise CheckFailed("`count_tokens` should be a function: def count_tokens(text): ...")
    for text in SENTENCES_09:
        expected = len(np.asarray(encoder.tokenizer(text)))
        returned = count_tokens(text)
        if returned is None:
            raise CheckFailed("count_tokens returned None: did you forget `return`?")
        value = ints_like(returned)
        if value is None:
            raise CheckFailed(
                f"count_tokens returned a {type(returned).__name__}; it should return one whole number"
            )
        if value == expected:
            continue
        where = f"for {text!r} ({expected} tokens)"
        if value == expected + 2:
            raise CheckFailed(
                f"count_tokens returned {value} {where}: it counts [CLS] and [SEP] too; count the tokenizer's "
                "pieces, len(encoder.tokenizer(text))"
            )
        if value == getattr(encoder, "sequence_length", None):
            raise CheckFailed(
                f"count_tokens returned {value} {where}: that is the padded length; count the tokenizer's pieces"
            )
        if value == len(text.split()):
            raise CheckFailed(
                f"count_tokens returned {value} {where}: that is the number of words; WordPiece splits rare "
                "words and punctuation into more pieces — use encoder.tokenizer(text)"
            )
        if value == len(text):
            raise CheckFailed(f"count_tokens returned {value} {where}: that is the number of characters")
        raise CheckFailed(
            f"count_tokens returned {value} {where}: count the ids that encoder.tokenizer(text) returns"
        )
    return f"count_tokens counts WordPiece tokens correctly ({len(SENTENCES_09)} sentences)"


@register("09.2")
def check_09_2(cosine_similarity) -> str:
    """Cosine similarity of two vectors of any length."""

    if not callable(cosine_similarity):
        raise CheckFailed("`cosine_similarity` should be a function: def cosine_similarity(a, b): ...")
    a = np.array([3.0, 4.0, 0.0, 1.0], dtype="float32")
    b = np.array([1.0, 2.0, 2.0, -1.0], dtype="float32")
    cases = [(a, b), (a, 3 * a), (a, -a)]
    for u, v in cases:
        expected = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
        returned = cosine_similarity(u, v)
        if returned is None:
            raise CheckFailed("cosine_similarity returned None: did you forget `return`?")
        value = np.asarray(returned, dtype="float64")
        if value.size != 1:
            raise CheckFailed(
                f"cosine_similarity returned an array of shape {value.shape}; it should return one number"
            )
        value = float(value.reshape(()))
        if np.isclose(value, expected, atol=1e-4):
            continue
        if np.isclose(value, float(u @ v), atol=1e-3):
            raise CheckFailed(
                "cosine_similarity returned the plain dot product: divide it by the lengths of both vectors "
                "(np.linalg.norm); only unit-length vectors can skip that"
            )
        if np.isclose(value, 1 - expected, atol=1e-4):
            raise CheckFailed(
                "cosine_similarity returned 1 − cosine, the cosine distance: return the similarity"
            )
        if np.isclose(value, float(u @ v) / float(np.linalg.norm(u)), atol=1e-3) or np.isclose(
            value, float(u @ v) / float(np.linalg.norm(v)), atol=1e-3
        ):
            raise CheckFailed("cosine_similarity divides by one vector's length only: divide by both")
        raise CheckFailed(
            "cosine_similarity gives a wrong value: a · b / (‖a‖ ‖b‖); it is 1 for a and 3a, −1 for a and −a"
        )
    return "cosine_similarity is a·b / (‖a‖ ‖b‖): 1 for parallel, −1 for opposite vectors"


@register("09.3")
def check_09_3(head, encoder) -> str:
    """A linear head on sentence embeddings reaching the threshold on the held-out test sentences."""

    expect_model(head, name="head")
    width = head.inputs[0].shape[-1] if head.inputs else None
    if width is not None and int(width) != encoder.dim:
        raise CheckFailed(
            f"`head` takes {int(width)} inputs but an embedding has {encoder.dim} numbers: "
            f"start it with keras.Input(shape=({encoder.dim},))"
        )
    bundle = data.load("sentiment")
    texts, labels = bundle.arrays("test")
    embeddings = encoder.embed([str(t) for t in texts])
    outputs = np.asarray(head(embeddings[:2], training=False))
    if outputs.ndim != 2 or outputs.shape[1] != 2:
        raise CheckFailed(
            f"`head` outputs {outputs.shape[-1]} numbers per sentence: use keras.layers.Dense(2) for the two "
            "classes (negative, positive)"
        )
    expect_logits(head, outputs, name="head")
    expect_accuracy(head, embeddings, labels, at_least=AT_LEAST_09, name="head")
    return f"head reaches ≥ {AT_LEAST_09:.0%} on the embeddings of {len(labels)} held-out sentences"
