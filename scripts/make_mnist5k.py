"""Convert ../shared/data/mnist_5k.csv.gz into the compact file shipped in nntui/data/.

Stratified fixed split: per class, a seeded shuffle, 400 train and 100 test digits.
Run once: python scripts/make_mnist5k.py [SRC] [DEST]
"""

import gzip
import sys
from pathlib import Path

import numpy as np

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mnist_5k.csv.gz")
DEST = Path(sys.argv[2] if len(sys.argv) > 2 else "nntui/data/mnist_5k.npz")
TRAIN_PER_CLASS = 400

rows = np.loadtxt(gzip.open(SRC, "rt"), delimiter=",", dtype=np.uint8)
images, labels = rows[:, :784], rows[:, 784]
rng = np.random.default_rng(20240501)
train_idx, test_idx = [], []
for digit in range(10):
    idx = rng.permutation(np.flatnonzero(labels == digit))
    train_idx.append(idx[:TRAIN_PER_CLASS])
    test_idx.append(idx[TRAIN_PER_CLASS:])
train_idx = rng.permutation(np.concatenate(train_idx))
test_idx = rng.permutation(np.concatenate(test_idx))
np.savez_compressed(
    DEST,
    train_images=images[train_idx],
    train_labels=labels[train_idx],
    test_images=images[test_idx],
    test_labels=labels[test_idx],
)
print(f"wrote {DEST} ({DEST.stat().st_size} bytes): {len(train_idx)} train, {len(test_idx)} test")
