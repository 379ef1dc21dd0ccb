"""DistributedDataParallel under torchrun: only rank 0 writes the run, from its all-reduced gradients.

    torchrun --standalone --nproc_per_node 2 examples/ddp_mnist.py     # CPU (gloo) or GPUs (nccl)
    nntui watch                                                          # the newest run under ./runs
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import nntui
from nntui.engine.data import load_mnist_5k

dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
rank, world = dist.get_rank(), dist.get_world_size()
device = torch.device(f"cuda:{rank % torch.cuda.device_count()}") if torch.cuda.is_available() else torch.device("cpu")
data = load_mnist_5k().to(device)
torch.manual_seed(0)  # the same initial weights on every rank
model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10)).to(device)
ddp = nn.parallel.DistributedDataParallel(model)
optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)

with nntui.watch(ddp, optimizer, name="ddp-mlp") as run:  # a no-op on ranks other than 0
    for epoch in range(3):
        g = torch.Generator().manual_seed(epoch)
        shard = torch.randperm(len(data.x_train), generator=g)[rank::world].to(device)  # each rank its own share
        for idx in shard.split(32):
            loss = F.cross_entropy(ddp(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad()
            loss.backward()  # DDP all-reduces the gradients here; nntui reads rank 0's copy
            optimizer.step()
            run.log(loss=loss)
if rank == 0:
    print(f"run directory: {run.run_dir}")
dist.destroy_process_group()
