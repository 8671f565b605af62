# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/tlcourse/tlcourse/blob/main/exercises/09_nlp.ipynb)
#
# # 09 · Transfer in NLP — exercises: tokens, similarity, a head on embeddings
#
# Three tasks on the moves of lesson 09: **count tokens** the way a BERT sees them, measure the
# **cosine similarity** of two embeddings, and train a **linear head on sentence embeddings** until
# it classifies held-out sentences well. About 25 minutes.
#
# **How the exercises work.** Each task has an answer cell and, below it, a check cell.
# Replace `raise NotImplementedError()` with your code, run the answer cell, then run the
# check cell. It prints one line:
#
# - ✅ your answer is right (and says what is now true);
# - ❌ something is wrong, and the hint says what and where to look;
# - ⏳ you have not attempted the task yet.
#
# The checks look at what your functions return and what your head does on held-out data, not at
# the text of your code: any correct answer passes. The lesson to read first is
# `notebooks/09_nlp.ipynb`.

# %%
# COLAB_INSTALL_CELL: `tlcourse build` writes the Colab install cell here (authoring.py)

# %%
import tlcourse

course = tlcourse.setup("09")  # first: it quiets TensorFlow's start-up logs before keras is imported
budget = course.budget

import keras
import numpy as np

# %% [markdown]
# The encoder is lesson 09's all-MiniLM-L6-v2 (it works offline), with sequences cut at 32 tokens,
# and the data are the course's short labelled sentences (positive or negative).

# %%
encoder = tlcourse.models.text_encoder("minilm", sequence_length=32)
data = tlcourse.data.load("sentiment")
train_texts, y_train = data.arrays("train")
train_texts = [str(t) for t in train_texts]
print(encoder)
print(data)

# %% [markdown]
# ## 09.1 Count tokens
#
# Write `count_tokens(text)` that returns how many WordPiece tokens `encoder.tokenizer` cuts `text`
# into — the pieces of the text itself, without the `[CLS]`, `[SEP]` and `[PAD]` tokens that packing
# adds later. `encoder.tokenizer(text)` returns the ids of the pieces.


# %%
def count_tokens(text):
    # BEGIN SOLUTION
    return len(np.asarray(encoder.tokenizer(text)))
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("09.1")

# %% [markdown]
# ## 09.2 Cosine similarity
#
# Write `cosine_similarity(a, b)` for two 1-D NumPy vectors: their dot product divided by the
# product of their lengths. It is 1 for vectors pointing the same way, 0 for perpendicular ones and
# −1 for opposite ones. (`encoder.embed` returns unit-length vectors, for which the dot product alone
# would do — but your function must work for any vectors.)


# %%
def cosine_similarity(a, b):
    # BEGIN SOLUTION
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    # END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("09.2")

# %% [markdown]
# ## 09.3 A linear head on sentence embeddings
#
# Embed the training sentences with `encoder.embed`, then build and train `head`: a Keras model
# that takes one embedding (`keras.Input(shape=(encoder.dim,))`) and returns **2 logits** with a
# single `keras.layers.Dense(2)` — no activation. Compile it with
# `SparseCategoricalCrossentropy(from_logits=True)` and train it on the embeddings and `y_train`.
# The embeddings are small numbers (unit length), so use a high learning rate such as `1e-2` and
# enough epochs (about 100: each takes milliseconds). The check embeds the held-out test sentences and
# expects at least 75% accuracy.

# %%
# BEGIN SOLUTION
train_embeddings = encoder.embed(train_texts)
keras.utils.set_random_seed(0)
head = keras.Sequential([keras.Input(shape=(encoder.dim,)), keras.layers.Dense(2)], name="sentiment_head")
head.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-2),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
head.fit(train_embeddings, y_train, epochs=100, batch_size=budget.batch_size, verbose=0)
# END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
tlcourse.check("09.3")

# %% [markdown]
# ## What next
#
# Try your `cosine_similarity` on `encoder.embed(["I loved this film.", "What a wonderful movie!",
# "The train was late again."])`: which sentence is closest to the first? Then compare your head with lesson 09's bag-of-words baseline: train the same `Dense(2)` head on
# `keras.layers.TextVectorization(output_mode="multi_hot")` vectors of the same sentences and
# measure both on the test split.
