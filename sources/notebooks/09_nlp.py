# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · Transfer in NLP
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/notebooks/09_nlp.ipynb)
#
# **Time:** about 35 minutes (fine-tuning, section 5, adds 1–15 minutes depending on your machine).
#
# **You will learn:**
# - how a BERT-family encoder reads text: WordPiece tokens, ids, special tokens and the padding mask;
# - how to use a pretrained sentence encoder's embeddings as features, and what cosine similarity between
#   them tells you;
# - that embeddings + a linear head beat a bag-of-words model trained from scratch on a small labelled set;
# - how fine-tuning the whole encoder works in Keras, and when it is worth its cost;
# - what multilingual encoders make possible: cross-lingual transfer, e.g. English → Hindi sentiment (section 6).
#
# **Prerequisites:** lessons 01–04 (features + a head, fine-tuning); what a `Dense` layer and logits are.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %% tags=["parameters"]
PROFILE = None  # "full", "cpu" or "ci"; None lets setup() decide
FINE_TUNE = None  # section 5; None = yes (over the budget's seeds)
TUNE_EPOCHS = 2  # section 5: epochs of each fine-tuning run (BERT's authors tried 2, 3 and 4)
MAX_TOKENS = 256  # longer texts are cut to this many tokens

# %%
import tlcourse

course = tlcourse.setup("09", profile=PROFILE)
budget = course.budget

# %% [markdown]
# ## 1. Transfer learning for text
#
# Everything the previous lessons did with images works for text, with one change of vocabulary: the
# *base* is a language model. **BERT** (Devlin et al., 2019) was pretrained on 3.3 billion words of books
# and Wikipedia to fill in masked words; on the way it learned grammar, word meanings and a good deal about
# the world. As the seeds say, "a language model trained on 1 billion sentences can be fine-tuned for
# sentiment analysis" — or reused as a frozen feature extractor, exactly like an ImageNet CNN.
#
# This lesson uses **all-MiniLM-L6-v2**: a small BERT (6 layers, 384 dimensions, 22 M parameters) distilled
# from a larger one (Wang et al., 2020) and then trained on over a billion sentence pairs so that sentences
# with similar meanings get similar vectors — a *sentence encoder* (Reimers & Gurevych, 2019). It comes from
# PyPI and works offline. Section 5 fine-tunes the same encoder.
#
# The target task is **sentiment**: is a review positive or negative? Online the data are IMDB movie
# reviews; offline, a few hundred short labelled sentences written for this course.

# %%
import keras
import numpy as np
import tensorflow as tf

reviews = tlcourse.data.load("imdb_reviews")
texts = {split: [str(t) for t in reviews.arrays(split)[0]] for split in ("train", "test")}
y = {split: reviews.arrays(split)[1] for split in ("train", "test")}
print(reviews)
for text, label in list(zip(texts["train"], y["train"], strict=True))[:4]:
    print(f"{reviews.class_names[label]:>8s}: {text[:110]}")

# %% [markdown]
# ## 2. Tokens: how a BERT reads a sentence
#
# A network cannot read letters; it reads numbers. BERT's **WordPiece** tokenizer cuts text into pieces from
# a fixed vocabulary of 30,522 entries: frequent words are one piece, rarer words are split into known
# sub-words marked with `##`, and each piece has an integer **id**. So no word is ever "unknown" if it can
# be spelled with known pieces — a big step up from word-level vocabularies.

# %%
encoder = tlcourse.models.text_encoder("minilm")
tokenizer = encoder.tokenizer
sentence = "The unboxing was underwhelming, but the battery life is fantastic!"
ids = np.asarray(tokenizer(sentence))
tokens = [tokenizer.id_to_token(int(i)) for i in ids]
print(f"{len(tokens)} tokens: {tokens}")
print(f"ids: {ids.tolist()}")

# %% [markdown]
# "unboxing" and "underwhelming" are not in the vocabulary, so they became several pieces; common words kept
# one id each, and the tokenizer lower-cased everything (this model is *uncased*). Before the encoder sees
# the ids, they are **packed**: a `[CLS]` token in front, `[SEP]` at the end, and `[PAD]` (id 0) up to a fixed
# length, with a **padding mask** that tells the encoder which positions are real.

# %%
packed = encoder.inputs([sentence])
length = int(packed["padding_mask"].sum())
print("token_ids    :", packed["token_ids"][0, : length + 3].tolist(), "…")
print("padding_mask :", packed["padding_mask"][0, : length + 3].astype(int).tolist(), "…")
print("first/last   :", tokenizer.id_to_token(int(packed["token_ids"][0, 0])),
      tokenizer.id_to_token(int(packed["token_ids"][0, length - 1])),
      tokenizer.id_to_token(int(packed["token_ids"][0, length])))  # fmt: skip

# %% [markdown]
# Compute grows with the sequence length (attention compares every token with every other one), so we pad
# to no more than the texts need. How many tokens do the training texts have?

# %%
lengths = np.array([len(np.asarray(tokenizer(text))) + 2 for text in texts["train"]])  # + [CLS] and [SEP]
p95 = int(np.percentile(lengths, 95))
sequence_length = int(min(MAX_TOKENS, 8 * np.ceil(p95 / 8)))  # a multiple of 8 suits the matrix units
print(
    f"tokens per training text: median {int(np.median(lengths))}, 95th percentile {p95}, longest {lengths.max()}"
)
print(
    f"sequence length: {sequence_length} (texts longer than that are cut: {np.mean(lengths > sequence_length):.0%})"
)
encoder = tlcourse.models.TextEncoder(
    encoder.name, encoder.backbone, tokenizer, sequence_length=sequence_length
)

# %% [markdown]
# > ⚠️ **Pitfall — a tokenizer from another model.** Ids mean something only to the model whose vocabulary
# > produced them: id 2307 is "great" for this BERT and something else for another model. Always load the
# > tokenizer *with* the model (keras-hub's `from_preset` does both), just as an image base needs its own
# > preprocessing.
#
# ## 3. Sentence embeddings and cosine similarity
#
# The encoder turns each token into a 384-dimensional vector that depends on the whole sentence. To get one
# vector per sentence, `encoder.embed` averages the token vectors (ignoring padding) and scales the result to
# length 1 — the recipe this sentence encoder was trained with. The **cosine similarity** of two such vectors
# (here simply their dot product) measures how close their meanings are.

# %%
import matplotlib.pyplot as plt

examples = [
    "I loved this film, the acting was superb.",
    "A wonderful movie with brilliant performances.",
    "I hated this film, the acting was dreadful.",
    "The soup was cold and the waiter was rude.",
    "Stock markets fell sharply on Monday.",
]
vectors = encoder.embed(examples)
similarity = vectors @ vectors.T
print(f"embeddings: {vectors.shape}, lengths {np.linalg.norm(vectors, axis=1).round(3).tolist()}")

fig, ax = plt.subplots(figsize=(6.2, 4.2))
ax.imshow(similarity, cmap="viridis", vmin=0, vmax=1)
for i in range(len(examples)):
    for j in range(len(examples)):
        ax.text(
            j,
            i,
            f"{similarity[i, j]:.2f}",
            ha="center",
            va="center",
            color="white" if similarity[i, j] < 0.6 else "black",
        )
short = [e[:28] + "…" for e in examples]
ax.set_xticks(range(len(examples)), [str(i + 1) for i in range(len(examples))])
ax.set_yticks(range(len(examples)), [f"{i + 1} {s}" for i, s in enumerate(short)], fontsize=8)
ax.set_title("cosine similarity of sentence embeddings")
plt.close(fig)
fig

# %% [markdown]
# Sentences 1 and 2 share almost no words, yet their similarity is high: the encoder compares meanings, not
# spellings. Sentence 3 is about the same topic as 1 with the opposite opinion, and its similarity to 1 is
# also high — the embedding encodes *what a sentence is about* first; the sentiment is one direction among
# many in the 384 dimensions. Finding that direction is the job of the head we train next. The unrelated
# sentences 4 and 5 are far from the rest.
#
# ## 4. Embeddings + a linear head vs. bag-of-words from scratch
#
# Two ways to classify sentiment from the same small labelled set, with the **same** linear classifier (a
# logistic regression whose regularisation strength `C` is chosen by cross-validation on the training set), the same
# training sentences and the same test set:
#
# - **pretrained:** the frozen encoder's embedding of each text → linear head;
# - **from scratch:** a *bag of words*. scikit-learn's `CountVectorizer(binary=True)` learns a vocabulary
#   from the training texts and turns each text into one 0/1 number per vocabulary word (does the word
#   occur?) → the same linear head. Everything it knows comes from the training texts. (Try
#   `TfidfVectorizer` or `ngram_range=(1, 2)` instead.)
#
# A review uses a few hundred of the tens of thousands of words in the vocabulary, so almost every entry of
# that table is 0. The vectorizer therefore returns a **sparse** matrix that stores only the non-zero
# entries. The cell prints both sizes for the texts loaded here. Expected for the `full` profile, not measured
# here: IMDB's 25,000 training reviews give this `CountVectorizer` a vocabulary of 74,849 words (Müller &
# Guido, 2016, ch. 7), so a dense float32 table needs 25,000 × 74,849 × 4 bytes ≈ 7.5 GB, and twice that in
# int64 — more than a Colab machine's ≈12.7 GB of RAM — while the sparse one stores each review's few hundred
# distinct words. (Keras' `TextVectorization(output_mode="multi_hot")` does the same job but returns a dense
# tensor: fine for a few thousand texts, or with a capped `max_tokens`.)

# %%
import time

started = time.perf_counter()
embeddings = {split: encoder.embed(texts[split]) for split in ("train", "test")}
print(f"embedded {sum(len(e) for e in embeddings.values())} texts in {time.perf_counter() - started:.1f} s")

# %%
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import normalize


def linear_head(features, labels, C=None):
    """A logistic regression; without C, its regularisation is chosen by 3-fold cross-validation."""
    if C is not None:
        return LogisticRegression(C=C, max_iter=2000).fit(features, labels)
    search = GridSearchCV(LogisticRegression(max_iter=2000), {"C": [0.01, 0.1, 1, 10, 100]}, cv=3)
    return search.fit(features, labels).best_estimator_


vectorizer = CountVectorizer(binary=True, dtype=np.float32)  # 0/1: does the word occur?
vectorizer.fit(texts["train"])  # the vocabulary: every word of the training texts
# sparse rows scaled to length 1, like the embeddings
bag_of_words = {split: normalize(vectorizer.transform(texts[split])) for split in ("train", "test")}
matrix = bag_of_words["train"]
memory_mb = {"sparse": (matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes) / 1e6,
             "dense": matrix.shape[0] * matrix.shape[1] * 4 / 1e6}  # fmt: skip
print(f"bag of words of the training texts: {matrix.shape[0]:,} × {matrix.shape[1]:,}, {matrix.nnz:,} non-zero "
      f"entries: {memory_mb['sparse']:.2f} MB sparse, {memory_mb['dense']:.2f} MB as a dense float32 table")  # fmt: skip
course.record("bag_of_words_mb", memory_mb)

pretrained_head = linear_head(embeddings["train"], y["train"])
started = time.perf_counter()
linear_head(embeddings["train"], y["train"], C=pretrained_head.C)  # one fit, timed for section 5
head_seconds = time.perf_counter() - started
scratch_head = linear_head(bag_of_words["train"], y["train"])
accuracy = {
    "embeddings_linear": float(pretrained_head.score(embeddings["test"], y["test"])),
    "bag_of_words_linear": float(scratch_head.score(bag_of_words["test"], y["test"])),
}
print(f"{len(texts['train'])} labelled training texts, {len(texts['test'])} test texts")
print(f"pretrained embeddings + linear head: {accuracy['embeddings_linear']:.1%}   (C = {pretrained_head.C})")
print(f"bag of words + linear head:          {accuracy['bag_of_words_linear']:.1%}   (C = {scratch_head.C}; "
      f"vocabulary of {len(vectorizer.vocabulary_):,} words)")  # fmt: skip
course.record("accuracy", accuracy)
course.record("train_size", len(texts["train"]))

# %% [markdown]
# Why is the gap so large? The bag of words knows only the words of the labelled texts. Count how many
# words of the test texts it has never seen:

# %%
words_of = vectorizer.build_analyzer()  # the vectorizer's own lower-casing and word splitting
test_words = [word for text in texts["test"] for word in words_of(text)]
unseen = float(np.mean([word not in vectorizer.vocabulary_ for word in test_words]))
print(f"{unseen:.0%} of the words in the test texts never occur in the {len(texts['train'])} training texts")
course.record("unseen_test_words", unseen)

# %% [markdown]
# For the bag of words, each of those words is invisible: a test review that says "superb" teaches it
# nothing unless "superb" was in a labelled training review. The pretrained encoder has met these words
# in billions of sentences and places "superb" near "excellent", so a head trained on one generalises to
# the other. That is the transfer.
#
# How does the gap depend on the number of labels? Below we train both heads (with the regularisation
# chosen above) on random subsets of the training set, a few labelled texts per class, over the budget's
# seeds. The bag of words keeps the vocabulary of all training texts — labels are not needed for that, so
# this only helps it.

# %%
from tqdm.auto import tqdm

rows = []
per_class = [k for k in (5, 10, 20, 40) if k < np.bincount(y["train"]).min()]
for k in tqdm(per_class, desc="labels per class"):
    for seed in budget.seeds:
        rng = np.random.default_rng(seed)
        chosen = np.concatenate(
            [rng.choice(np.flatnonzero(y["train"] == c), k, replace=False) for c in (0, 1)]
        )
        head = linear_head(embeddings["train"][chosen], y["train"][chosen], C=pretrained_head.C)
        rows.append({"recipe": "embeddings + linear", "fraction": k, "seed": seed,
                     "accuracy": float(head.score(embeddings["test"], y["test"]))})  # fmt: skip
        head = linear_head(bag_of_words["train"][chosen], y["train"][chosen], C=scratch_head.C)
        rows.append({"recipe": "bag of words + linear", "fraction": k, "seed": seed,
                     "accuracy": float(head.score(bag_of_words["test"], y["test"]))})  # fmt: skip

fig = tlcourse.viz.compare(rows, by="fraction")
fig.axes[0].set_xlabel("labelled training texts per class")
fig.axes[0].set_title(f"Sentiment test accuracy, mean ± std over {len(budget.seeds)} seeds")
fig

# %%
curve = {}
for k in per_class:
    curve[str(k)] = {}
    for recipe in ("embeddings + linear", "bag of words + linear"):
        values = [r["accuracy"] for r in rows if r["recipe"] == recipe and r["fraction"] == k]
        curve[str(k)][recipe] = {
            "mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)),
            "n": len(values),
        }
    e, b = curve[str(k)]["embeddings + linear"], curve[str(k)]["bag of words + linear"]
    print(
        f"{k:>3} per class: embeddings {e['mean']:.2f} ± {e['std']:.2f}   bag of words {b['mean']:.2f} ± {b['std']:.2f}"
    )
course.record("learning_curve", curve)

# %% [markdown]
# With a handful of labels per class the bag of words is close to a coin toss (0.5), while the pretrained
# embeddings already separate most reviews: the printed means show by how much at each size. With enough
# labelled data (tens of thousands of IMDB reviews) a bag of words becomes a strong baseline; transfer matters
# most when labels are scarce.
#
# > ⚠️ **Pitfall — an unfair baseline.** "Pretrained beats scratch" means something only with the same
# > examples, the same test set and an equally tuned classifier; here both heads chose their regularisation
# > by the same cross-validation. Comparing a tuned transformer with an untuned baseline, or on different
# > splits, proves nothing.
#
# ## 5. Fine-tuning the encoder
#
# Feature extraction keeps the encoder frozen. **Fine-tuning** trains the encoder too, end to end, so its
# features adapt to the task — lesson 04's second stage, with two differences for transformers: there is no
# BatchNorm to protect (they use LayerNorm, which has no moving statistics), and the learning rate must be
# tiny (2e-5 to 5e-5, Devlin et al.), because a large one wipes out what pretraining learned within a few steps.
#
# For a fair comparison we fine-tune **the same MiniLM** whose frozen embeddings section 4 used, on the same
# training texts, and test on the same test texts. The model, in plain Keras: the token inputs, the backbone
# (token ids → one vector per token), the same masked mean pooling as `embed`, and a `Dense(2)` head with logits.


# %%
def fine_tune_model(text_encoder):
    names = text_encoder.inputs(["x"]).keys()  # token_ids, padding_mask (and segment_ids for BERT)
    inputs = {n: keras.Input(shape=(text_encoder.sequence_length,), dtype="bool" if n == "padding_mask" else "int32",
                             name=n) for n in names}  # fmt: skip
    tokens = text_encoder.backbone(inputs)["sequence_output"]
    pooled = keras.layers.GlobalAveragePooling1D(name="mean_pool")(tokens, mask=inputs["padding_mask"])
    logits = keras.layers.Dense(2, name="logits")(pooled)
    model = keras.Model(inputs, logits, name=f"{text_encoder.name}_sentiment")
    for layer in text_encoder.backbone.layers:  # BERT's [CLS] "pooler" is not used by mean pooling: freeze it
        if layer.name == "pooled_dense":
            layer.trainable = False
    return model


classifier = fine_tune_model(encoder)
trainable = sum(int(np.prod(w.shape)) for w in classifier.trainable_weights)
print(
    f"{classifier.name}: {classifier.count_params():,} parameters, {trainable:,} of them trainable when fine-tuning"
)

# %% [markdown]
# Every one of those weights is updated at each step, so fine-tuning costs far more than the linear head of
# section 4. Fine-tuning changes the encoder's weights in place, so we keep a copy of the pretrained ones and
# start each run (one per seed) from them, with a fresh head drawn with that seed. As in lesson 05, the model
# is compiled once and restarted for each seed (`tlcourse.adapt.restart`: new weights, a fresh optimizer),
# so that its training step is traced once. Each run trains `TUNE_EPOCHS` epochs, whatever the profile: BERT's
# authors fine-tuned for 2, 3 or 4 (Devlin et al., 2019, appendix A.3). Set `FINE_TUNE = False` in the
# parameters cell to skip it.

# %%
fine_tune = FINE_TUNE if FINE_TUNE is not None else True
if fine_tune:
    pretrained_weights = encoder.backbone.get_weights()
    x_train, x_test = encoder.inputs(texts["train"]), encoder.inputs(texts["test"])
    # A tf.data pipeline rather than arrays: Keras adds a fixed cost to every epoch over arrays (lesson 01).
    train_texts = tf.data.Dataset.from_tensor_slices((x_train, y["train"]))
    classifier.compile(
        optimizer=keras.optimizers.Adam(learning_rate=5e-5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    tuned, started = [], time.perf_counter()
    for seed in budget.seeds:
        tlcourse.reseed(seed)
        encoder.backbone.set_weights(pretrained_weights)  # every run starts from the pretrained encoder ...
        tlcourse.adapt.restart(classifier, fine_tune_model(encoder))  # ... and a new head drawn with this seed
        batches = train_texts.shuffle(len(y["train"]), seed=seed).batch(16)  # reshuffled every epoch
        classifier.fit(batches, epochs=TUNE_EPOCHS, shuffle=False, verbose=2)
        tuned.append(float(classifier.evaluate(x_test, y["test"], verbose=0)[1]))
    tune_seconds = (time.perf_counter() - started) / len(tuned)
    encoder.backbone.set_weights(pretrained_weights)  # later cells use the pretrained encoder again
    frozen = accuracy["embeddings_linear"]
    spread = f" ± {np.std(tuned, ddof=1):.1%}" if len(tuned) > 1 else " (one seed)"
    print(f"fine-tuned MiniLM:                 {np.mean(tuned):.1%}{spread}, seeds {tuned}")
    print(f"frozen MiniLM + linear head:       {frozen:.1%}")
    print(f"difference: {(np.mean(tuned) - frozen) * len(y['test']):+.1f} of {len(y['test'])} test texts; "
          f"cost: {tune_seconds:.0f} s per run vs {head_seconds:.3f} s for the head ({tune_seconds / head_seconds:,.0f}×)")  # fmt: skip
    course.record("fine_tuning", {"tuned": tuned, "frozen": frozen, "epochs": TUNE_EPOCHS,
                                  "test_size": len(y["test"]), "cost_ratio": tune_seconds / head_seconds})  # fmt: skip
else:
    print("fine-tuning skipped (FINE_TUNE = False)")

# %% [markdown]
# Compare the printed accuracies. On this small training set, fine-tuning the encoder matches or beats its
# frozen embeddings + a linear head (the claims tests check that it stays within 5 points of it or above),
# at a cost hundreds to thousands of times higher — the printed ratio — and with a risk of overfitting the
# encoder when labels are few. Start with the frozen encoder + linear head, and fine-tune when it is not good
# enough and you have the data and compute.
#
# > ⚠️ **Pitfall — the learning rate of the seeds' image recipes.** `Adam(1e-3)` is fine for a new head,
# > but applied to a pretrained transformer it destroys the pretrained weights in a few steps (lesson 05's
# > "too-high learning rate", in its NLP version). Use 2e-5 to 5e-5, and a warm-up if you can.
#
# ## 6. Cross-lingual transfer: English → Hindi
#
# Lesson 02 used the seeds' example of *transductive* transfer: a sentiment model trained on **English**
# reviews (labels available) must work on **Hindi** reviews (no labels) — same task, different domain
# (the language). Can our encoder do it? Look at what its English vocabulary makes of a Hindi sentence
# ("this film was very good"), word by word:

# %%
import unicodedata

hindi = "यह फ़िल्म बहुत अच्छी थी"
hindi_pieces = [tokenizer.id_to_token(int(i)) for i in np.asarray(tokenizer(hindi))]
print(hindi_pieces)
for word in hindi.split():
    print(f"  {word:8s} → {[tokenizer.id_to_token(int(i)) for i in np.asarray(tokenizer(word))]}")

# Which Devanagari signs (Unicode combining marks, category Mn) does the 30,522-piece vocabulary lack?
vocabulary = set(tokenizer.get_vocabulary())
signs = sorted({c for c in unicodedata.normalize("NFD", hindi) if unicodedata.category(c) == "Mn"})
missing = [c for c in signs if c not in vocabulary and "##" + c not in vocabulary]
lost_words = [
    w for w in hindi.split() if np.asarray(tokenizer(w)).tolist() == [tokenizer.token_to_id("[UNK]")]
]
lost_with_missing_sign = sum(any(c in unicodedata.normalize("NFD", w) for c in missing) for w in lost_words)
print(
    f"{hindi_pieces.count('[UNK]')} of {len(hindi_pieces)} pieces are [UNK]: {len(lost_words)} of "
    f"{len(hindi.split())} words are lost entirely"
)
print(
    f"signs the vocabulary lacks: {', '.join(unicodedata.name(c).title() for c in missing)}; "
    f"{lost_with_missing_sign} of the {len(lost_words)} lost words contain one"
)
print("बहुत without its vowel sign u:", [tokenizer.id_to_token(int(i)) for i in np.asarray(tokenizer("बहत"))])
course.record("hindi", {"pieces": len(hindi_pieces), "unk_pieces": hindi_pieces.count("[UNK]"),
                        "words": len(hindi.split()), "unknown_words": len(lost_words),
                        "signs": len(signs), "missing_signs": len(missing),
                        "lost_with_missing_sign": int(lost_with_missing_sign)})  # fmt: skip

# %% [markdown]
# Measured above: most Hindi words are not in the English vocabulary and become `[UNK]`, one id that means
# "some word I do not know"; the words that survive are spelled letter by letter. The vocabulary has pieces
# for the Devanagari letters but not for several of the signs that complete a syllable (the virama, the
# nukta, the vowel sign u): a word that contains one cannot be spelled, so WordPiece gives up on the whole
# word — while the same word without the sign splits into letters. An English encoder cannot transfer to Hindi. **Multilingual encoders** can. They share one vocabulary
# across 100+ languages (a cased one, or one that keeps these marks) and are trained so that a sentence and its
# translation land close together in the embedding space:
#
# - **mBERT** and **XLM-R** (Conneau et al., 2020) are pretrained on text in ~100 languages; a classifier
#   fine-tuned on English labels works surprisingly well in other languages (*zero-shot cross-lingual
#   transfer*). keras-hub has them as presets, e.g. `"bert_base_multi"`, `"xlm_roberta_base_multi"`.
# - **LaBSE** (Feng et al., 2022) and **paraphrase-multilingual-MiniLM-L12-v2** (Reimers & Gurevych, 2020,
#   distilled from an English sentence encoder onto 50+ languages) are multilingual *sentence* encoders,
#   trained so that a sentence and its translation get nearly the same vector.
#
# With such an encoder the seeds' scenario needs no Hindi label at all: embed the English reviews, train
# the linear head of section 4 on them, then apply the same head to the embeddings of Hindi reviews. The
# head never knows which language a vector came from. (Not run here: those encoders need a download, and
# the course works offline. Online, `tlcourse.models.text_encoder` also accepts keras-hub preset names such as
# `"xlm_roberta_base_multi"`.) A small set of Hindi labels, if you can get them, is then best used to *check*
# the transferred model, or to fine-tune it a little — the inductive version of the same story.
#
# ## 7. Beyond text: speech (reading)
#
# The seeds name speech too, and the recipe is the same; this section is reading only, because no pretrained
# speech model can be loaded offline from a package this course installs. A speech encoder such as
# **wav2vec 2.0** (Baevski et al., 2020) is pretrained on thousands of hours of *unlabelled* audio, by
# masking stretches of its own representation of the waveform and learning to pick the right one — BERT's
# masked-word game, played on sound. Its output is one vector per 20 ms of audio. From there:
#
# - **feature extraction:** mean-pool the vectors of a clip and train a linear head — e.g. keyword spotting
#   or speaker emotion from a few hundred labelled clips, as section 4 did with sentences;
# - **fine-tuning:** add a head that predicts a letter per frame (trained with the CTC loss) and fine-tune
#   the encoder with a small learning rate: speech recognition from ten minutes to an hour of transcribed
#   speech, as reported by Baevski et al.;
# - **cross-lingual:** XLS-R (Babu et al., 2021) is pretrained on 128 languages, so a low-resource
#   language gets the transfer that section 6 described for text.
#
# Audio sound-event models such as **YAMNet** (trained on AudioSet's labelled clips) are used the same way:
# frozen embeddings + a small head.
#
# ## Your turn
#
# Open [the exercise notebook](../exercises/09_nlp.ipynb): you will tokenise and count tokens, compute
# cosine similarities, and train a linear head on sentence embeddings to a target accuracy.
#
# ## Summary
#
# - A BERT-family encoder reads WordPiece ids packed with `[CLS]`, `[SEP]` and `[PAD]`, plus a padding mask;
#   the tokenizer must be the model's own.
# - A sentence encoder's mean-pooled, normalised embeddings are features: cosine similarity compares
#   meanings, and a linear head on them learns a task from few labels.
# - Measured here on the same small labelled set: pretrained embeddings + a linear head beat a bag-of-words
#   model trained from scratch, by the margins printed in section 4, most of all with few labels.
# - Fine-tuning the whole encoder (tiny learning rate, no BatchNorm to protect) can go further with more data
#   and compute; it is the expensive option.
# - An English tokenizer turns most Hindi words into `[UNK]`: its vocabulary lacks Devanagari signs such as the
#   virama (measured in section 6); multilingual encoders (mBERT, XLM-R, LaBSE) map languages into one space, so a head trained
#   on English labels can classify Hindi text: cross-lingual transfer.
# - Speech encoders (wav2vec 2.0, XLS-R) follow the same recipe: pretrained on unlabelled audio, then
#   frozen features + a head, or fine-tuning.
#
# ## Further reading
#
# - Devlin, Chang, Lee & Toutanova, *BERT: Pre-training of Deep Bidirectional Transformers for Language
#   Understanding*, NAACL 2019. https://arxiv.org/abs/1810.04805
# - Reimers & Gurevych, *Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks*, EMNLP 2019.
#   https://arxiv.org/abs/1908.10084
# - Wang et al., *MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained
#   Transformers*, NeurIPS 2020. https://arxiv.org/abs/2002.10957
# - Reimers & Gurevych, *Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation*,
#   EMNLP 2020. https://arxiv.org/abs/2004.09813
# - Conneau et al., *Unsupervised Cross-lingual Representation Learning at Scale* (XLM-R), ACL 2020.
#   https://arxiv.org/abs/1911.02116
# - Feng et al., *Language-agnostic BERT Sentence Embedding* (LaBSE), ACL 2022. https://arxiv.org/abs/2007.01852
# - Baevski, Zhou, Mohamed & Auli, *wav2vec 2.0: A Framework for Self-Supervised Learning of Speech
#   Representations*, NeurIPS 2020. https://arxiv.org/abs/2006.11477
# - Babu et al., *XLS-R: Self-supervised Cross-lingual Speech Representation Learning at Scale*, 2021.
#   https://arxiv.org/abs/2111.09296
# - Howard & Ruder, *Universal Language Model Fine-tuning for Text Classification* (ULMFiT), ACL 2018.
#   https://arxiv.org/abs/1801.06146
# - Maas et al., *Learning Word Vectors for Sentiment Analysis* (the IMDB reviews dataset), ACL 2011.
# - Müller & Guido, *Introduction to Machine Learning with Python*, O'Reilly 2016, ch. 7 (a bag of words of IMDB).
# - The model card of all-MiniLM-L6-v2: https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2
# - KerasHub: https://keras.io/keras_hub/
#
# ## Questions
#
# 1. What are `[CLS]`, `[SEP]` and `[PAD]`, and what does the padding mask tell the encoder?
# 2. Why does WordPiece split "underwhelming" into several pieces, and why is that better than an
#    "unknown word" token?
# 3. Two sentences about the same film with opposite opinions have a high cosine similarity. Why, and how can
#    a linear head still separate them?
# 4. Why does the bag-of-words model need many more labelled examples than a linear head on pretrained
#    embeddings? Use the share of unseen test words printed in section 4.
# 5. Describe, step by step, how you would build a Hindi sentiment classifier without a single Hindi label.
