"""biocurate: build and keep rebuilding a human-verified biomedical tool-calling dataset."""

import os

# polars' allocator (jemalloc) keeps what a frame freed for 10 s before handing it back; a stage
# frees and makes frames batch after batch, so that is held on top of its working set (about 250 MB
# after the publish selection at 100k calls). Set before polars is first imported; a value in the
# environment wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

__version__ = "0.1.0"
