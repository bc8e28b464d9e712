"""Pretrained word vectors: nn.Embedding.from_pretrained with torch's semantics (shared table, freeze,
padding_idx excluded from gradients but kept as given), and reading GloVe's and word2vec's text
formats, with clear errors on bad files. The rows below are the first values of GloVe 6B 100-d's
vectors for "the", "," and "." (GloVe: PDDL), cut to 4 dimensions."""
import numpy as np
import pytest
import torch

import gaze

GLOVE = ["the -0.038194 -0.24487 0.72812 -0.39961", ", -0.10767 0.11053 0.59812 -0.54361",
         ". -0.33979 0.20941 0.46348 -0.64792"]


def test_from_pretrained_matches_torch():
    w = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    for freeze in (True, False):
        ge = gaze.nn.Embedding.from_pretrained(gaze.tensor(w), freeze=freeze, padding_idx=1)
        te = torch.nn.Embedding.from_pretrained(torch.tensor(w), freeze=freeze, padding_idx=1)
        idx = np.array([[1, 2, 2], [4, 1, 0]])
        out, ref = ge(gaze.tensor(idx)), te(torch.tensor(idx))
        np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())  # row 1 as given, not zeroed
        assert ge.weight.requires_grad == (not freeze) == ref.requires_grad
        if not freeze:
            (out * gaze.tensor(np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)[:, :, :3])).sum().backward()
            (ref * torch.arange(24.0).reshape(2, 3, 4)[:, :, :3]).sum().backward()
            np.testing.assert_allclose(ge.weight.grad.numpy(), te.weight.grad.numpy())
    table = gaze.tensor(w)
    frozen = gaze.nn.Embedding.from_pretrained(table)
    assert not table.requires_grad and [k for k, _ in frozen.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match="float \\[N, D\\] table"):
        gaze.nn.Embedding.from_pretrained(gaze.tensor(np.zeros(3, dtype=np.float32)))
    with pytest.raises(IndexError, match="padding_idx 5"):
        gaze.nn.Embedding.from_pretrained(table, padding_idx=5)


def test_glove_and_word2vec_text(tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("\n".join(GLOVE + ["the 1 2 3 4"]) + "\n")  # a repeated word keeps its first vector
    words, vectors = gaze.io.read_word_vectors(str(glove))
    assert words == ["the", ",", "."] and vectors.numpy().dtype == np.float32
    np.testing.assert_allclose(vectors.numpy()[0], [-0.038194, -0.24487, 0.72812, -0.39961], rtol=1e-6)
    w2v = tmp_path / "w2v.txt"
    w2v.write_text("3 4\n" + "\n".join(GLOVE) + "\n")
    words2, vectors2 = gaze.io.read_word_vectors(str(w2v))
    assert words2 == words and np.array_equal(vectors2.numpy(), vectors.numpy())
    assert gaze.io.read_word_vectors(str(w2v), max_words=2)[0] == ["the", ","]
    emb = gaze.nn.Embedding.from_pretrained(vectors)
    np.testing.assert_array_equal(emb(gaze.tensor([2])).detach().numpy(), vectors.numpy()[2:3])


@pytest.mark.parametrize("text,pattern", [
    ("the 1 2 3\nof 1 2\n", r":2: 2 values, expected 3"),
    ("the 1 2 x\n", r":1: value 3 of 'the' is not a finite number: 'x'"),
    ("the 1 nan 3\n", r"not a finite number: 'nan'"),
    ("the\n", r":1: expected a word and its vector"),
    ("5 3\nthe 1 2 3\n", r"header declares 5 vectors but the file has 1"),
    ("\n\n", r"no word vectors"),
])
def test_bad_word_vector_files(tmp_path, text, pattern):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(gaze.DataError, match=pattern):
        gaze.io.read_word_vectors(str(path))
    with pytest.raises(gaze.DataError, match="cannot open"):
        gaze.io.read_word_vectors(str(tmp_path / "missing.txt"))
