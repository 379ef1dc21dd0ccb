"""The torch side: data, models, optimizers, the trainer, the LR range test, checkpoints and probes."""
