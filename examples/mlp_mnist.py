"""The lecture's MLP (784-100-100-10, sigmoid, SGD) in your own loop, recorded by nntui.watch.

    python examples/mlp_mnist.py            # then, in another terminal: nntui watch
    nntui check runs/<id>                   # health checks (this sigmoid net learns slowly)
"""

import torch
import torch.nn.functional as F
from torch import nn

import nntui
from nntui.engine.data import load_mnist_5k  # 5,000 embedded MNIST digits; use your own DataLoader instead

data = load_mnist_5k()
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(784, 100), nn.Sigmoid(), nn.Linear(100, 100), nn.Sigmoid(), nn.Linear(100, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

with nntui.watch(model, optimizer, name="lecture-mlp", probe_every=50) as run:
    for epoch in range(5):
        for idx in torch.randperm(len(data.x_train)).split(32):
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            run.log(loss=loss)  # a tensor: no host sync per step
        with torch.no_grad():
            out = model(data.x_test)
            run.log_eval(test_loss=F.cross_entropy(out, data.y_test), test_accuracy=(out.argmax(1) == data.y_test).float().mean())
print(f"run directory: {run.run_dir}")
