"""Lesson 09's claim: on the same small labelled set and test split, pretrained sentence embeddings + a
linear head beat a bag-of-words model trained from scratch (same linear classifier, C chosen by CV)."""


def test_pretrained_embeddings_beat_bag_of_words(records):
    accuracy = records("09")["accuracy"]
    pretrained, scratch = accuracy["embeddings_linear"], accuracy["bag_of_words_linear"]
    assert pretrained - scratch >= 0.05, f"embeddings {pretrained:.3f} vs bag of words {scratch:.3f}"


def test_the_gap_holds_with_few_labels(records):
    curve = records("09")["learning_curve"]
    smallest = min(curve, key=int)
    row = curve[smallest]
    assert row["embeddings + linear"]["n"] >= 3
    assert row["embeddings + linear"]["mean"] > row["bag of words + linear"]["mean"], (smallest, row)
