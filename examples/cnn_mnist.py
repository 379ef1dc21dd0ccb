"""A small CNN on the embedded digits with Adam and a OneCycle schedule, recorded by nntui.watch.

    python examples/cnn_mnist.py            # then, in another terminal: nntui watch
"""

import torch
import torch.nn.functional as F
from torch import nn

import nntui
from nntui.engine.data import load_mnist_5k

data = load_mnist_5k()
x_train, x_test = data.x_train.view(-1, 1, 28, 28), data.x_test.view(-1, 1, 28, 28)
torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
)
epochs, batch = 3, 64
steps_per_epoch = -(-len(x_train) // batch)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=epochs * steps_per_epoch)

with nntui.watch(model, optimizer, name="small-cnn", scheduler=scheduler,
                 total_steps=epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch) as run:
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(x_train)).split(batch):
            loss = F.cross_entropy(model(x_train[idx]), data.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            run.log(loss=loss)
        model.eval()
        with torch.no_grad():
            out = model(x_test)
            run.log_eval(test_loss=F.cross_entropy(out, data.y_test), test_accuracy=(out.argmax(1) == data.y_test).float().mean())
print(f"run directory: {run.run_dir}")
