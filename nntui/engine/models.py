"""The MLP builder: depth, width, activation, initialisation, BatchNorm and dropout placement."""

from __future__ import annotations


import torch
from torch import nn

from nntui.presets import ModelConfig

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


class MLP(nn.Module):
    """Linear layers named fc1..fcN; `acts[i]` is the nonlinearity fed by fc(i+1) (None for the output)."""

    def __init__(self, input_dim: int, output_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.activation_name = cfg.activation
        widths = [input_dim, *cfg.hidden]
        blocks: list[nn.Module] = []
        self.linears: list[nn.Linear] = []
        self.acts: list[nn.Module | None] = []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            linear = nn.Linear(fan_in, fan_out, bias=cfg.batchnorm != "before")
            act = ACTIVATIONS[cfg.activation]()
            parts: list[nn.Module] = [linear]
            if cfg.batchnorm == "before":
                parts.append(nn.BatchNorm1d(fan_out))
            p = cfg.dropout_per_layer()[i]
            dropout = [nn.Dropout(p)] if p > 0 else []
            if cfg.dropout_position == "before_activation":
                parts += dropout + [act]
            else:
                parts += [act] + dropout
            if cfg.batchnorm == "after":
                parts.append(nn.BatchNorm1d(fan_out))
            blocks.append(nn.Sequential(*parts))
            self.linears.append(linear)
            self.acts.append(act)
        head = nn.Linear(widths[-1], output_dim)
        blocks.append(head)
        self.linears.append(head)
        self.acts.append(None)
        self.layers = nn.Sequential(*blocks)
        self.layer_names = [f"fc{i + 1}" for i in range(len(self.linears))]
        init_weights(self, cfg)

    def named_layers(self) -> dict[str, nn.Linear]:
        """The Linear layers by their lecture names (fc1..fcN), as the probe takes them."""
        return dict(zip(self.layer_names, self.linears))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _gain(cfg: ModelConfig) -> float:
    if cfg.init_gain is None:
        return 1.0
    if cfg.init_gain == "auto":
        return nn.init.calculate_gain(cfg.activation)
    return float(cfg.init_gain)


@torch.no_grad()
def init_weights(model: MLP, cfg: ModelConfig) -> None:
    gain = _gain(cfg)
    nonlinearity = cfg.activation if cfg.activation in ("relu", "leaky_relu", "tanh", "sigmoid") else "relu"
    for linear in model.linears:
        w = linear.weight
        match cfg.init:
            case "default":
                pass  # PyTorch's own: kaiming_uniform(a=sqrt(5))
            case "normal":
                nn.init.normal_(w, 0.0, cfg.init_std)
            case "xavier_normal":
                nn.init.xavier_normal_(w, gain=gain)
            case "xavier_uniform":
                nn.init.xavier_uniform_(w, gain=gain)
            case "kaiming_normal":
                nn.init.kaiming_normal_(w, nonlinearity=nonlinearity)
            case "kaiming_uniform":
                nn.init.kaiming_uniform_(w, nonlinearity=nonlinearity)
            case "orthogonal":
                nn.init.orthogonal_(w, gain=gain)
            case "zeros":
                nn.init.zeros_(w)
            case "constant":
                nn.init.constant_(w, cfg.init_value)
        if linear.bias is not None:
            if cfg.bias_init == "zeros" or (cfg.bias_init == "default" and cfg.init != "default"):
                nn.init.zeros_(linear.bias)
            elif cfg.bias_init == "normal":
                nn.init.normal_(linear.bias, 0.0, cfg.init_std)
    if cfg.output_scale != 1.0:
        model.linears[-1].weight.mul_(cfg.output_scale)
