"""Exact and near-duplicate questions, in near-linear time (MinHash buckets, never all pairs).

A question is reduced to its *tokens*: lower case, split on anything that is not a letter or
digit (so punctuation, case and "_" do not matter), a few filler words dropped, as a set (so
word order does not matter). Two questions are near-duplicates when the Jaccard similarity of
their token sets reaches the configured threshold *and* they name the same identifiers: the
*signature* of a question is the set of its tokens that hold a digit or belong to one of its
call's identifiers, and questions with different signatures are never compared. So "What is
BRCA1?" and "what is brca1" merge, "What is BRCA1?" and "What is BRCA2?" never do.

Candidates come from MinHash locality-sensitive hashing: BANDS bands of ROWS_PER_BAND hash
minima each, bucketed together with the signature; pairs sharing a bucket are then compared
exactly. With 10 bands of 3, a pair at similarity 0.8 shares a bucket with probability 0.999
(0.99 at 0.7, 0.74 at 0.5); identical token sets always do. Questions of one call are
also compared directly with each other (a handful per call).

The earliest question (by the caller's order) of each group is kept; later ones are flagged
with the id of the kept question they repeat. Reference rows (already accepted) are kept and
never flagged.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where used: a worker making question keys needs numpy alone
    import pandas as pd
    import polars as pl

TOKEN = re.compile(r"[^\W_]+")
# Filler words whose presence or absence does not change what is asked.
FILLER = frozenset("a an the is are was of please me can could you i we do does tell give show".split())
BANDS = 10
ROWS_PER_BAND = 3
NUM_PERM = BANDS * ROWS_PER_BAND
_SEED = 20261125
SEP = "\x1f"  # never in a token


def tokens(text: str) -> frozenset[str]:
    """The question's tokens: lower case, letters/digits only, filler words dropped, as a set."""
    return frozenset(TOKEN.findall(text.lower())).difference(FILLER)


def exact_key(text: str) -> str:
    """Exact duplicates: the same text up to case and white space."""
    return " ".join(text.lower().split())


def signature(toks: frozenset[str], identifiers: Iterable[str] = ()) -> frozenset[str]:
    """The identifier-like tokens of a question: tokens holding a digit, and its call's identifiers."""
    ident_tokens = _ident_tokens(tuple(identifiers))
    return frozenset(t for t in toks if t in ident_tokens or not t.isalpha())


@lru_cache(maxsize=4096)
def _ident_tokens(identifiers: tuple) -> frozenset[str]:
    """The tokens of a call's identifiers (a call's questions come together: computed once for them)."""
    return frozenset(TOKEN.findall(" ".join(map(str, identifiers)).lower()))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _stable_hash64(values: Sequence[str]) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "little") for v in values], dtype=np.uint64
    )


def minhash(token_sets: Sequence[frozenset[str]], num_perm: int = BANDS * ROWS_PER_BAND) -> np.ndarray:
    """(n, num_perm) MinHash signatures; every set must be non-empty. Vectorised over all tokens."""
    vocab: dict[str, int] = {}
    coded = [tuple(vocab.setdefault(t, len(vocab)) for t in s) for s in token_sets]
    return _minhash_coded(coded, _stable_hash64(list(vocab)), num_perm)


def _minhash_coded(
    coded: Sequence[Sequence[int] | frozenset[int]], token_hashes: np.ndarray, num_perm: int
) -> np.ndarray:
    """``minhash`` of token sets given as token numbers, with each token's hash."""
    flat = [t for s in coded for t in s]
    lengths = np.fromiter((len(s) for s in coded), dtype=np.int64, count=len(coded))
    hashes = token_hashes[np.asarray(flat, dtype=np.int64)]
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    rng = np.random.default_rng(_SEED)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    out = np.empty((len(coded), num_perm), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(num_perm):  # multiply-add hashing mod 2**64, one permutation at a time
            out[:, k] = np.minimum.reduceat(hashes * a[k] + b[k], starts)
    return out


def _band_keys(mh: np.ndarray, sig_hash: np.ndarray) -> list[np.ndarray]:
    """One bucket key per band: the band's hash minima mixed with the signature's hash."""
    mix = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)
    band_keys = []
    with np.errstate(over="ignore"):
        for band in range(BANDS):
            part = mh[:, band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND]
            band_keys.append(
                sig_hash * np.uint64(2 * band + 1)
                ^ (part[:, 0] * mix[0])
                ^ (part[:, 1] * mix[1])
                ^ (part[:, 2] * mix[2])
            )
    return band_keys


def _bucket_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, group) pairs for every group of two or more rows sharing a key; groups numbered from 0."""
    if not len(keys):  # no row (no question with tokens): no pair
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1]))
    group = np.cumsum(starts) - 1
    multi = np.bincount(group)[group] > 1
    _, dense = np.unique(group[multi], return_inverse=True)
    return order[multi], dense.reshape(-1)


def find_duplicates(frame: pd.DataFrame, within_call_threshold: float, dataset_threshold: float) -> pd.DataFrame:
    """Flag repeated questions.

    ``frame`` has columns item_id, call_id, text, identifiers (list) and reference (bool), in
    priority order: earlier rows win. Returns, per item_id, the kept question each flagged row
    repeats: ``exact_duplicate_of`` (same text up to case and spaces, any call),
    ``near_duplicate_in_call_of`` (another question of the same call) and
    ``near_duplicate_of`` (a question of another call), plus the ``similarity`` found. With a
    ``kind`` column (single, parallel, multi_step, no_tool), only questions of one kind are
    compared (a set's question never repeats a single call's, nor the other way round). A
    ``signature`` column (``question_keys``' ) may stand for ``identifiers``; with all of
    ``question_keys``' KEYED_COLUMNS, its keys are used rather than made again.
    """
    import pandas as pd

    n = len(frame)
    ids = frame["item_id"].tolist()
    calls = frame["call_id"].tolist()
    kinds = frame["kind"].tolist() if "kind" in frame else [None] * n
    reference = frame["reference"].to_numpy(dtype=bool)
    out = pd.DataFrame(
        {
            "item_id": ids,
            "exact_duplicate_of": None,
            "near_duplicate_in_call_of": None,
            "near_duplicate_of": None,
            "similarity": np.nan,
        }
    )
    if n == 0:
        return out
    exact = [None] * n
    first: dict[str, int] = {}  # by kind and text
    texts = frame["text"].tolist()
    for i, text in enumerate(texts):
        key = f"{kinds[i]}\x1f{exact_key(text)}"
        if key in first and not reference[i]:
            exact[i] = ids[first[key]]
        else:
            first.setdefault(key, i)
    out["exact_duplicate_of"] = exact

    live, sigs, token_set, band_keys, sig_hash = _row_keys(frame, texts, exact)
    rows = np.flatnonzero(live)
    row_parts: list[np.ndarray] = []
    bucket_parts: list[np.ndarray] = []
    if len(rows):
        # Questions of one call (with one signature) are always compared with each other.
        call_keys = [f"{calls[i]}\x1f{s}" for i, s in zip(rows, sig_hash, strict=True)]
        call_codes = pd.Series(call_keys).astype("category").cat.codes
        offset = 0
        for keys in [*band_keys, call_codes.to_numpy()]:
            r, b = _bucket_pairs(keys)
            row_parts.append(rows[r])
            bucket_parts.append(b + offset)
            offset += int(b.max()) + 1 if len(b) else 0
    pair_rows = np.concatenate(row_parts) if row_parts else np.empty(0, dtype=np.int64)
    pair_buckets = np.concatenate(bucket_parts) if bucket_parts else np.empty(0, dtype=np.int64)
    order = np.argsort(pair_rows, kind="stable")
    pair_rows, pair_buckets = pair_rows[order], pair_buckets[order]
    firsts = np.flatnonzero(np.concatenate(([True], pair_rows[1:] != pair_rows[:-1]))) if len(pair_rows) else pair_rows
    bounds = np.append(firsts, len(pair_rows)).tolist()
    row_list, bucket_list = pair_rows.tolist(), pair_buckets.tolist()
    row_buckets = {row_list[s]: bucket_list[s:e] for s, e in pairwise(bounds)}

    kept_in: dict[int, list[int]] = defaultdict(list)
    in_call = [None] * n
    in_dataset = [None] * n
    similarity = np.full(n, np.nan)
    for i in sorted(row_buckets):
        same: tuple[int, float] | None = None  # the most similar kept question of the same call
        other: tuple[int, float] | None = None  # ... and of another call
        seen: set[int] = set()
        for bucket in row_buckets[i]:
            for j in kept_in[bucket]:
                if j in seen or sigs[j] != sigs[i] or kinds[j] != kinds[i]:
                    continue
                seen.add(j)
                s = jaccard(token_set(i), token_set(j))
                if calls[j] == calls[i] and s >= within_call_threshold and (same is None or s > same[1]):
                    same = (j, s)
                elif calls[j] != calls[i] and s >= dataset_threshold and (other is None or s > other[1]):
                    other = (j, s)
        if reference[i] or (same is None and other is None):
            for bucket in row_buckets[i]:
                kept_in[bucket].append(i)
        elif same is not None:
            in_call[i], similarity[i] = ids[same[0]], same[1]
        elif other is not None:
            in_dataset[i], similarity[i] = ids[other[0]], other[1]
    out["near_duplicate_in_call_of"] = in_call
    out["near_duplicate_of"] = in_dataset
    out["similarity"] = similarity
    return out


def _row_keys(
    frame: pd.DataFrame, texts: list[str], exact: list
) -> tuple[np.ndarray, list, Callable[[int], frozenset], list[np.ndarray], np.ndarray]:
    """``find_duplicates``' view of its rows: which take part (no exact duplicate, some tokens),
    their signatures (equal when the token sets are), each row's token set (by row number), and,
    for the rows taking part, the band keys and signature hashes.

    With ``question_keys``' columns (KEYED_COLUMNS) the keys are taken as they are (the same values
    ``question_keys`` made from the same text) and a token set is built only for a row compared;
    else everything comes from the texts (and ``identifiers`` or ``signature``)."""
    n = len(frame)
    if all(c in frame for c in KEYED_COLUMNS):
        sigs = frame["signature"].tolist()  # sorted tokens joined: equal strings, equal sets
        live = frame["has_tokens"].to_numpy(dtype=bool) & np.array([e is None for e in exact], dtype=bool)
        rows = np.flatnonzero(live)
        built: dict[int, frozenset[str]] = {}

        def token_set(i: int) -> frozenset[str]:
            if i not in built:
                built[i] = tokens(texts[i])
            return built[i]

        bands = [frame[c].to_numpy(dtype=np.uint64)[rows] for c in KEY_COLUMNS[1:-1]]
        return live, sigs, token_set, bands, frame["sig_hash"].to_numpy(dtype=np.uint64)[rows]
    # Token sets as sets of token numbers (smaller than sets of strings); the same sets, so the
    # same result.
    vocab: dict[str, int] = {}
    toks: list[frozenset[int]] = []
    codes: list[frozenset[int]] = []
    given = frame["signature"].tolist() if "signature" in frame else None
    idents_list = frame["identifiers"].tolist() if given is None else given
    for text, idents in zip(texts, idents_list, strict=True):
        words = tokens(text)
        sig = signature(words, idents) if given is None else (idents.split(SEP) if idents else ())
        toks.append(frozenset([vocab.setdefault(w, len(vocab)) for w in words]))
        codes.append(frozenset([vocab.setdefault(w, len(vocab)) for w in sig]))
    names = list(vocab)
    del vocab
    live = np.array([exact[i] is None and bool(toks[i]) for i in range(n)], dtype=bool)
    rows = np.flatnonzero(live)
    if not len(rows):
        return live, codes, toks.__getitem__, [], np.empty(0, dtype=np.uint64)
    sig_hash = _stable_hash64([SEP.join(sorted(names[t] for t in codes[i])) for i in rows])
    bands = _band_keys(_minhash_coded([toks[i] for i in rows], _stable_hash64(names), NUM_PERM), sig_hash)
    return live, codes, toks.__getitem__, bands, sig_hash


# --- the search over a whole dataset, a batch at a time -------------------------------------

KEY_COLUMNS = ("exact_key", *(f"band{b}" for b in range(BANDS)), "call_key")
# ``question_keys``' columns that spare ``find_duplicates`` building every row's keys again.
KEYED_COLUMNS = ("signature", "sig_hash", "has_tokens", *KEY_COLUMNS[1:-1])


def question_keys(texts: Sequence[str], identifiers: Sequence, kinds: Sequence, calls: Sequence) -> pl.DataFrame:
    """Per question, what ``find_duplicates`` groups it by, without its text: its ``signature``
    (its identifier tokens, sorted, joined by SEP; ``find_duplicates`` takes it instead of the
    identifiers), ``sig_hash``, ``has_tokens``, and 64-bit keys (KEY_COLUMNS) that two questions
    share whenever ``find_duplicates`` could compare them: ``exact_key`` (kind and text up to case
    and spaces), one per MinHash band and ``call_key`` (call and signature; both 0 without
    tokens). Keys are hashes: a shared key makes two questions candidates, no more."""
    return keys_frame(question_key_columns((texts, identifiers, kinds, calls)))


def keys_frame(columns: dict[str, Any]) -> pl.DataFrame:
    """``question_key_columns``' columns as ``question_keys``' frame."""
    import polars as pl

    return pl.DataFrame({**columns, "signature": pl.Series(columns["signature"], dtype=pl.String)})


def question_key_columns(questions: tuple[Sequence[str], Sequence, Sequence, Sequence]) -> dict[str, Any]:
    """``question_keys``' columns (numpy arrays; ``signature`` a list of str) of (texts,
    identifiers, kinds, calls): numpy alone, so a worker process makes them cheaply
    (``biocurate.workers.aside``)."""
    texts, identifiers, kinds, calls = questions
    vocab: dict[str, int] = {}
    toks: list[tuple[int, ...]] = []
    sigs: list[str] = []
    for text, idents in zip(texts, identifiers, strict=True):
        words = tokens(text)
        toks.append(tuple(vocab.setdefault(w, len(vocab)) for w in words))
        sigs.append(SEP.join(sorted(signature(words, idents))))
    n = len(toks)
    sig_hash = _stable_hash64(sigs)
    has_tokens = np.fromiter((bool(t) for t in toks), dtype=bool, count=n)
    rows = np.flatnonzero(has_tokens)
    columns: dict[str, Any] = {
        "signature": sigs,
        "sig_hash": sig_hash,
        "has_tokens": has_tokens,
        "exact_key": _stable_hash64([f"{k}{SEP}{exact_key(t)}" for k, t in zip(kinds, texts, strict=True)]),
    }
    bands = (
        _band_keys(_minhash_coded([toks[i] for i in rows], _stable_hash64(list(vocab)), NUM_PERM), sig_hash[rows])
        if len(rows)
        else [np.empty(0, dtype=np.uint64)] * BANDS
    )
    call = _stable_hash64([f"{calls[i]}{SEP}{sig_hash[i]}" for i in rows])
    for name, values in (*zip(KEY_COLUMNS[1:-1], bands, strict=True), ("call_key", call)):
        full = np.zeros(n, dtype=np.uint64)
        full[rows] = values
        columns[name] = full
    return columns


def _linked_components(keys: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(each row's component, whether it shares a key with another row) of ``keys``' rows, rows
    linked by any shared key of KEY_COLUMNS (band and call keys only between rows with tokens).

    The keys are taken one at a time: the components found so far are the nodes of a graph whose
    edges join them to the key's shared values, and its components are the new ones. One graph
    of every key's edges at once held twelve edges a row (at 4 million questions, gigabytes)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = keys.height
    has_tokens = keys["has_tokens"].to_numpy()
    labels = np.arange(n)  # a component's label is one of its rows: always below n
    linked = np.zeros(n, dtype=bool)
    for name in KEY_COLUMNS:
        idx = np.arange(n) if name == "exact_key" else np.flatnonzero(has_tokens)
        r, g = _bucket_pairs(keys[name].to_numpy()[idx])
        if not len(r):
            continue
        rows = idx[r]
        del idx, r
        linked[rows] = True
        nodes = n + int(g.max()) + 1  # the labels, then the key's shared values
        graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (labels[rows], g + n)), shape=(nodes, nodes))
        del rows, g
        _, merged = connected_components(graph, directed=False)
        labels = merged[labels]  # every component holds a label node, so the new labels stay below n
    return labels, linked


def candidate_batches(keys: pl.DataFrame, batch_rows: int) -> list[np.ndarray]:
    """Batches of rows of ``keys`` (questions in priority order with KEY_COLUMNS, ``has_tokens``
    and ``reference``) to give ``find_duplicates`` one at a time: each batch is a union of whole
    groups of rows linked, directly or through others, by a shared key, so a batch's result for
    its rows is the result over all rows. Groups without a question of this run
    (``reference`` false) and rows sharing no key are left out: nothing to flag there. Rows of a
    batch in ascending order; batches of about ``batch_rows`` rows (a larger group is one batch)."""
    labels, linked = _linked_components(keys)
    rows = np.flatnonzero(linked)
    if not len(rows):
        return []
    comp = labels[rows]
    live = ~keys["reference"].to_numpy()[rows]
    rows = rows[np.isin(comp, np.unique(comp[live]))]
    comp = labels[rows]
    # components in the order of their first row, each row's place kept
    first: dict[int, int] = {}
    for r, c in zip(rows.tolist(), comp.tolist(), strict=True):
        first.setdefault(c, r)
    order = np.lexsort((rows, np.array([first[c] for c in comp.tolist()], dtype=np.int64)))
    rows, comp = rows[order], comp[order]
    batches, start = [], 0
    ends = np.flatnonzero(np.concatenate((comp[1:] != comp[:-1], [True]))) + 1  # end of each component
    for end in ends.tolist():
        if end - start >= batch_rows or end == len(rows):
            batches.append(np.sort(rows[start:end]))
            start = end
    return batches
