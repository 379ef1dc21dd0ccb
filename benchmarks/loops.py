"""The two reference loops nntui is measured against: (a) a bare PyTorch loop, (b) the lecture's loop.

Both train the lecture's 784-100-100-100-10 sigmoid net with SGD(lr=1e-3) on the embedded MNIST digits.
Each function trains `warmup` steps untimed, then as many steps as fit in `seconds`, and returns
{"steps", "seconds", "steps_per_second"}.
"""

from __future__ import annotations

import struct
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LR = 1e-3
HIDDEN = 3  # sigmoid hidden layers of 100 units


class SimpleMNIST_NN(nn.Module):
    """The lecture's network, as written there (one shared activation module, view to 784)."""

    def __init__(self, n_layers: int, activation=nn.Sigmoid) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.activation = activation()
        layers = [nn.Linear(28 * 28, 100), self.activation]
        for _ in range(n_layers - 1):
            layers.append(nn.Linear(100, 100))
            layers.append(self.activation)
        layers.append(nn.Linear(100, 10))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        x = x.view(-1, 28 * 28)
        return self.layers(x)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _result(steps: int, seconds: float) -> dict:
    return {"steps": steps, "seconds": round(seconds, 4), "steps_per_second": steps / seconds if seconds > 0 else 0.0}


# ---------------------------------------------------------------- (a) bare loop

def bare_loop(x_train: torch.Tensor, y_train: torch.Tensor, batch_size: int, device: torch.device, seconds: float, warmup: int, seed: int = 0) -> dict:
    """Dataset as one tensor on the device, randperm + slices per epoch, loss read back once per epoch."""
    torch.manual_seed(seed)
    x, y = x_train.to(device), y_train.to(device)
    model = SimpleMNIST_NN(HIDDEN).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    n = len(x)
    per_epoch = n // batch_size
    epoch_loss = torch.zeros((), device=device)
    last_epoch_loss = float("nan")
    steps = 0
    timed_from: float | None = None
    deadline = float("inf")
    while True:
        perm = torch.randperm(n, device=device)
        for i in range(per_epoch):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(model(x.index_select(0, idx)), y.index_select(0, idx))  # = x[idx], faster on CPU
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            epoch_loss += loss.detach()
            steps += 1
            if steps == warmup:
                sync(device)
                timed_from = time.perf_counter()
                deadline = timed_from + seconds
            elif timed_from is not None and time.perf_counter() >= deadline:
                sync(device)
                result = _result(steps - warmup, time.perf_counter() - timed_from)
                result["last_epoch_loss"] = last_epoch_loss
                return result
        last_epoch_loss = (epoch_loss / per_epoch).item()  # the one read-back per epoch
        epoch_loss.zero_()


# ---------------------------------------------------------------- (b) the lecture's loop

def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist_raw(root: Path, train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray) -> Path:
    """The digits as torchvision's MNIST raw files (root/MNIST/raw/*-ubyte), readable with download=False."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    _write_idx(raw / "train-images-idx3-ubyte", train_images.reshape(-1, 28, 28))
    _write_idx(raw / "train-labels-idx1-ubyte", train_labels.reshape(-1))
    _write_idx(raw / "t10k-images-idx3-ubyte", test_images.reshape(-1, 28, 28))
    _write_idx(raw / "t10k-labels-idx1-ubyte", test_labels.reshape(-1))
    return root


def get_forward_hook(history_dict, key):
    def forward_hook(self, input_, output):
        history_dict[key] = input_[0].cpu().detach().numpy().flatten()

    return forward_hook


def get_backward_hook(history_dict, key):
    def backward_hook(grad):
        history_dict[key] = grad.abs().cpu().detach().numpy().flatten()

    return backward_hook


def register_model_hooks(model):
    cur_ind = 0
    hooks_data_history = defaultdict(list)
    for child in model.layers.children():
        if isinstance(child, nn.Linear):
            cur_ind += 1
            child.register_forward_hook(get_forward_hook(hooks_data_history, f"activation_{cur_ind}"))
            child.weight.register_hook(get_backward_hook(hooks_data_history, f"gradient_{cur_ind}"))
    return hooks_data_history


def lecture_loop(mnist_root: Path, batch_size: int, device: torch.device, seconds: float, warmup: int, seed: int = 0, num_workers: int = 2) -> dict:
    """The lecture's train_epoch over torchvision MNIST + DataLoader, with its hooks registered."""
    import torchvision
    from torch.utils.data import DataLoader
    from torchvision.datasets import MNIST

    torch.manual_seed(seed)
    transform = torchvision.transforms.Compose([torchvision.transforms.ToTensor(), torchvision.transforms.Normalize((0.13), (0.3))])
    train_set = MNIST(root=str(mnist_root), train=True, download=False, transform=transform)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    model = SimpleMNIST_NN(n_layers=HIDDEN).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    criterion = nn.CrossEntropyLoss().to(device)
    hooks_data_history = register_model_hooks(model)
    loss_history = []
    steps = 0
    timed_from: float | None = None
    deadline = float("inf")
    while True:
        for batch in train_loader:  # train_epoch, verbatim apart from the timing
            optimizer.zero_grad()
            x_train, y_train = batch
            x_train, y_train = x_train.to(device), y_train.to(device)
            y_pred = model(x_train)
            loss = criterion(y_pred, y_train)
            loss_history.append(loss.cpu().detach().numpy())
            loss.backward()
            optimizer.step()
            steps += 1
            if steps == warmup:
                timed_from = time.perf_counter()
                deadline = timed_from + seconds
            elif timed_from is not None and time.perf_counter() >= deadline:
                result = _result(steps - warmup, time.perf_counter() - timed_from)
                result["last_loss"] = float(loss_history[-1])
                result["hooked_layers"] = len(hooks_data_history)
                del train_loader  # shut the workers down before the next measurement
                return result


class LectureData:
    """A temp dir of MNIST raw files with the same digits; the lecture's epoch length via tiling."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray, tile_to: int) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="nntui-bench-mnist-")
        reps = max(1, -(-tile_to // len(images)))
        self.train_size = len(images) * reps
        self.root = write_mnist_raw(Path(self._tmp.name), np.tile(images, (reps, 1, 1)), np.tile(labels, reps), test_images, test_labels)

    def close(self) -> None:
        self._tmp.cleanup()
