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


def test_the_bag_of_words_is_stored_sparse(records):
    """Section 4 keeps the bag of words sparse: far smaller than the dense table it replaces."""
    memory = records("09")["bag_of_words_mb"]
    assert memory["sparse"] * 5 < memory["dense"], memory


def test_many_test_words_are_unseen_by_the_bag_of_words(records):
    """Section 4 explains the gap by the test words the training texts never contain."""
    unseen = records("09")["unseen_test_words"]
    assert 0.1 <= unseen < 1, unseen


def test_fine_tuning_the_same_encoder_matches_or_beats_its_frozen_features(records):
    """Section 5: the same MiniLM, fine-tuned, stays within 5 points of its frozen embeddings + linear head or
    above them, is far above chance, and costs hundreds of times the head's fit."""
    run = records("09")["fine_tuning"]
    assert len(run["tuned"]) >= 3, "measured over the budget's seeds, with its spread"
    tuned = sum(run["tuned"]) / len(run["tuned"])
    assert tuned >= run["frozen"] - 0.05, run
    assert tuned >= 0.75, run
    assert run["cost_ratio"] >= 100, run


def test_an_english_tokenizer_loses_most_of_a_hindi_sentence(records):
    """Section 6: most Hindi words become [UNK], the surviving ones are spelled letter by letter, and the
    vocabulary lacks Devanagari signs that every lost word contains."""
    hindi = records("09")["hindi"]
    assert hindi["unknown_words"] * 2 > hindi["words"], hindi
    assert 0 < hindi["unk_pieces"] < hindi["pieces"], hindi
    assert hindi["missing_signs"] >= 3, hindi  # the prose names the virama, the nukta and the vowel sign u
    assert hindi["lost_with_missing_sign"] == hindi["unknown_words"], hindi
