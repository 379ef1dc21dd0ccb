"""The trainer's periodic evaluation (nntui/engine/evaluation.py) against plain torch, and every primitive of the
probe's two reduction backends (numpy_ops.NumpyOps, torch_ops.TorchOps) against plain numpy / math on small
tensors with ties, NaN, negatives, one element and float32 rounding that a float64 accumulation must avoid
(issue 15, item 5: scripts/mutation.sh engine runs these per mutant; all in-process, well under a second each)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nntui.engine import evaluation
from nntui.engine.probes import numpy_ops, torch_ops
from nntui.engine.probes.numpy_ops import NumpyOps, OpsCache
from nntui.engine.probes.torch_ops import TorchOps, ops_for

# -- evaluation


def tiny_model(outputs: int) -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, outputs))


def tiny_split(n: int, seed: int, classes: int = 3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("batch", [3, 8192])
@pytest.mark.parametrize("training", [True, False])
def test_evaluation_is_the_eval_mode_loss_and_accuracy_of_the_given_split(batch, training):
    model = tiny_model(3)
    x_test, y_test = tiny_split(10, 1)
    x_train, y_train = tiny_split(10, 2)
    model.train(training)
    loss, accuracy = evaluation.evaluate(model, x_test, y_test, "classification", batch)
    assert model.training is training  # the mode is given back
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        expected_loss = F.cross_entropy(logits, y_test).item()
        expected_accuracy = (logits.argmax(1) == y_test).float().mean().item()
        on_train = F.cross_entropy(model(x_train), y_train).item()
    assert loss == pytest.approx(expected_loss, rel=1e-6) and abs(expected_loss - on_train) > 1e-3
    assert accuracy == pytest.approx(expected_accuracy, abs=1e-7)
    assert 0 < accuracy < 1  # neither all right nor all wrong: a miscount would show


def test_evaluation_accuracy_counts_the_right_answers_over_every_chunk():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # predicts the larger coordinate
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [1.0, 3.0], [5.0, 4.0], [0.0, 2.0], [3.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1, 0, 0, 0])  # right: rows 0, 1, 3, 4, 6 -> 5 of 7
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    for batch in (1, 2, 3, 7, 8192):
        calls.clear()
        loss, accuracy = evaluation.evaluate(model, x, y, "classification", batch)
        assert calls == [min(batch, 7 - i) for i in range(0, 7, batch)]  # chunks of `batch`: memory stays bounded
        assert accuracy == pytest.approx(5 / 7)
        assert loss == pytest.approx(F.cross_entropy(x, y).item(), rel=1e-6)


@pytest.mark.parametrize("batch", [2, 8192])
def test_regression_evaluation_is_the_mean_squared_error_per_output_and_no_accuracy(batch):
    model = tiny_model(3)
    x, _ = tiny_split(7, 4)
    y = torch.randn(7, 3, generator=torch.Generator().manual_seed(5))
    loss, accuracy = evaluation.evaluate(model, x, y, "regression", batch)
    assert accuracy is None and model.training
    model.eval()
    with torch.no_grad():
        expected = ((model(x) - y) ** 2).mean().item()
    assert loss == pytest.approx(expected, rel=1e-6)


def test_evaluation_on_device_leaves_loss_and_accuracy_as_one_tensor():
    model = tiny_model(3)
    x, y = tiny_split(9, 6)
    both = evaluation.evaluate_on_device(model, x, y, "classification", 4)
    assert isinstance(both, torch.Tensor) and both.shape == (2,)
    assert both.tolist() == pytest.approx(list(evaluation.evaluate(model, x, y, "classification")), rel=1e-6)
    regression = evaluation.evaluate_on_device(model, x, torch.zeros(9, 3), "regression")
    assert regression[1].item() == 0.0


def test_evaluation_stays_on_the_models_device():
    """The trainer reads it back with its block's one transfer: made anywhere else, it would fail (or sync) on
    a GPU. The meta device stands in for one (no data, but devices are checked)."""
    meta = torch.device("meta")
    model = nn.Linear(4, 3, device=meta)
    x, y = torch.empty(5, 4, device=meta), torch.zeros(5, dtype=torch.long, device=meta)
    assert evaluation.evaluate_on_device(model, x, y, "classification", 2).device == meta
    assert evaluation.evaluate_on_device(model, x, torch.empty(5, 3, device=meta), "regression", 2).device == meta


# -- the two backends, primitive by primitive

BACKENDS = {
    "numpy": lambda: (NumpyOps(), lambda a: np.asarray(a)),
    "torch": lambda: (TorchOps(torch.device("cpu")), lambda a: torch.as_tensor(np.asarray(a))),
}


@pytest.fixture(params=list(BACKENDS))
def backend(request):
    return BACKENDS[request.param]()


def values(x) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def floats(xs) -> list[float]:
    return [float(x) for x in xs]


RNG = np.random.default_rng(11)
MIXED = [RNG.normal(0, 3, size=(5, 4)).astype(np.float32), np.float32([[-2.0, 2.0, 0.0, -2.0]]), np.float32([7.5]),
         RNG.normal(-1, 1, size=(3, 2, 2)).astype(np.float32)]


def test_norms_and_sums_accumulate_in_float64(backend):
    ops, arr = backend
    # float32 accumulation would lose the small terms next to 2**24
    big = np.float32([4096.0, 0.5, 0.5, 0.5, 0.5])  # squares: 2**24 and four 0.25
    ones = np.float32([2.0 ** 24, 1.0, 1.0, 1.0])
    xs = [big, *MIXED]
    assert floats(ops.norms([arr(x) for x in xs])) == pytest.approx([math.sqrt(math.fsum(v * v for v in x.astype(np.float64).ravel())) for x in xs], rel=1e-12)
    assert floats(ops.sums_of([arr(abs(x)) for x in [ones, *MIXED]])) == pytest.approx(
        [math.fsum(abs(x).astype(np.float64).ravel()) for x in [ones, *MIXED]], rel=1e-12)
    assert floats(ops.norms([])) == [] and floats(ops.sums_of([])) == []


def test_in_place_subtract_and_copy_touch_each_pair(backend):
    ops, arr = backend
    xs, ys = [arr(x.copy()) for x in MIXED], [arr(x * 0.5 + 1) for x in MIXED]
    ops.sub_(xs, ys)
    for x, a in zip(xs, MIXED):
        np.testing.assert_allclose(values(x), a - (a * 0.5 + 1), rtol=1e-6)
    ops.copy_(xs, ys)
    for x, a in zip(xs, MIXED):
        np.testing.assert_array_equal(values(x), a * 0.5 + 1)


def test_medians_are_the_lower_median(backend):
    ops, arr = backend
    cases = [np.float32([3.0, -1.0, 2.0, 10.0]), np.float32([5.0]), np.float32([4.0, 4.0, -4.0, 4.0, 0.0]), *MIXED]
    expected = [float(np.sort(c.ravel())[(c.size - 1) // 2]) for c in cases]
    assert floats(ops.medians([arr(c) for c in cases])) == expected
    assert expected[0] == 2.0  # lower of the two middle values of an even count


def test_abs_gives_each_same_shaped_input_its_own_result(backend):
    ops, arr = backend
    a, b = np.float32([[-1.0, 2.0], [-3.0, 0.0]]), np.float32([[5.0, -6.0], [7.0, -8.0]])
    for _ in range(2):  # the second call reuses the buffers of the first
        out = ops.abs([arr(a), arr(b), arr(MIXED[3])])
        for result, x in zip(out, [a, b, MIXED[3]]):
            np.testing.assert_array_equal(values(result), np.abs(x))
    assert values(ops.empty_like(arr(MIXED[0]))).shape == (5, 4)
    assert values(ops.empty_like(arr(MIXED[0]))).dtype == np.float32


def test_inverse_root_is_the_adam_step_per_unit_first_moment(backend):
    ops, arr = backend
    vs = [np.float32([0.0, 1e-4, 4.0]), np.float32([[9.0, 0.25]])]
    scales, eps, lrs = [2.0, 1.0], [1e-8, 1e-3], [0.1, 0.01]
    v_hats, steps = ops.inverse_root([arr(v) for v in vs], scales, eps, lrs)
    for v, s, e, lr, v_hat, step in zip(vs, scales, eps, lrs, v_hats, steps):
        np.testing.assert_allclose(values(v_hat), v.astype(np.float64) * s, rtol=1e-12)
        np.testing.assert_allclose(values(step), lr / (np.sqrt(v.astype(np.float64) * s) + e), rtol=1e-12)
        assert values(step).dtype == np.float64


def reference_histogram(x: np.ndarray, log2_min: int, bins: int) -> list[int]:
    x = x.astype(np.float64).ravel()
    finite = x[np.isfinite(x)]
    edges = [2.0 ** (log2_min + k) for k in range(bins + 1)]
    below = int((finite < edges[0]).sum())
    middle = np.histogram(finite, bins=edges)[0].tolist()
    middle[-1] -= int((finite == edges[-1]).sum())  # np.histogram's last bin is closed; ours is not
    return [below, *middle, int(x.size - below - sum(middle))]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_histograms_bin_by_power_of_two_with_the_tails_and_non_finite_outside(backend, dtype):
    ops, arr = backend
    edgy = np.array([0.0, 2.0 ** -4, 2.0 ** -4 * 1.5, 2.0 ** -3, 0.99 * 2.0 ** -3, 2.0 ** 3, 2.0 ** 3 * 0.999, 2.0 ** 4,
                     2.0 ** -6, 100.0, np.inf, np.nan, 0.3, 0.3, 1.0], dtype=dtype)
    other = np.abs(RNG.normal(0, 1, size=9)).astype(dtype)
    counts = floats(ops.histograms([arr(edgy), arr(other)], -4, 7))
    assert counts == [*reference_histogram(edgy, -4, 7), *reference_histogram(other, -4, 7)]
    assert len(counts) == 2 * 9 and sum(counts) == edgy.size + other.size


def test_torch_histograms_read_bfloat16_too():
    ops = TorchOps(torch.device("cpu"))
    x = torch.tensor([0.0, 2.0 ** -4, 0.75, 1.0, 3.0, 2.0 ** 3, math.inf], dtype=torch.bfloat16)
    assert ops.histograms([x], -4, 7).tolist() == reference_histogram(x.float().numpy(), -4, 7)


def test_sample_helpers_flat_take_pad_stack_sort_minmax(backend):
    ops, arr = backend
    x = arr(np.float32([[3.0, np.nan], [-1.0, 2.0]]))
    flat = ops.flat(x)
    np.testing.assert_array_equal(values(flat), [3.0, np.nan, -1.0, 2.0])
    np.testing.assert_array_equal(values(ops.take(flat, ops.index(("t",), lambda: [2, 0, 3]))), [-1.0, 3.0, 2.0])
    padded = ops.pad(arr(np.float32([1.0, -2.0])), 5)
    np.testing.assert_array_equal(values(padded), [1.0, -2.0, np.inf, np.inf, np.inf])
    assert values(padded).dtype == np.float32
    rows = ops.sort_rows(ops.stack([arr(np.float32([2.0, np.nan, -5.0, 1.0])), arr(np.float32([0.0, 0.0, -1.0, 9.0]))]))
    np.testing.assert_array_equal(values(rows), [[-5.0, 1.0, 2.0, np.nan], [-1.0, 0.0, 0.0, 9.0]])
    assert floats(ops.minmax(arr(np.float32([4.0, -3.0, 8.0, 0.5])))) == [-3.0, 8.0]
    assert all(math.isnan(v) for v in floats(ops.minmax(flat)))  # NaN propagates
    assert floats(ops.minmax(arr(np.float32([6.5])))) == [6.5, 6.5]


def test_row_reductions_over_stacked_activations(backend):
    ops, arr = backend
    stacked = RNG.normal(0, 1, size=(3, 4, 5)).astype(np.float32)
    stacked[1, :, 2] = -1.0
    stacked[0, 1, :] = 0.0
    x = arr(stacked)
    np.testing.assert_allclose(values(ops.sum(x, (1, 2))), stacked.astype(np.float64).sum(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(values(ops.norm(x, (1, 2))), np.sqrt((stacked.astype(np.float64) ** 2).sum(axis=(1, 2))), rtol=1e-12)
    np.testing.assert_array_equal(values(ops.amin(x, 1)), stacked.min(axis=1))
    np.testing.assert_array_equal(values(ops.amax(x, 1)), stacked.max(axis=1))
    np.testing.assert_array_equal(values(ops.count(x > 0, (1, 2))), (stacked > 0).sum(axis=(1, 2)))
    np.testing.assert_array_equal(values(ops.count(ops.amax(x, 1) <= 0, 1)), (stacked.max(axis=1) <= 0).sum(axis=1))
    rows = values(ops.nan_like_rows(ops.sum(x, (1, 2))))
    assert rows.shape == (3,) and np.isnan(rows).all()


def test_gathering_into_one_float64_vector_and_reading_it_back(backend):
    ops, arr = backend
    scalars = [arr(np.float32(1.5)), arr(np.float64(-2.25)), arr(np.float32(0.0))]
    gathered = ops.scalars(scalars)
    assert values(gathered).dtype == np.float64 and values(gathered).tolist() == [1.5, -2.25, 0.0]
    assert values(ops.scalars([])).size == 0
    flat = ops.concat([gathered, arr(np.float32([7.0, 1.0 / 3.0])), arr(np.int64([4, 5]))])
    assert values(flat).dtype == np.float64
    assert values(flat).tolist() == [1.5, -2.25, 0.0, 7.0, float(np.float32(1.0 / 3.0)), 4.0, 5.0]
    assert ops.to_list([flat, arr(np.float64([9.0]))]) == [1.5, -2.25, 0.0, 7.0, float(np.float32(1.0 / 3.0)), 4.0, 5.0, 9.0]


def test_array_views_the_tensor_and_nan_is_one_nan(backend):
    ops, _ = backend
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    view = ops.array(t)
    with torch.no_grad():
        t[0] = 5.0
    assert values(view).tolist() == [5.0, 2.0]  # no copy: the probe reads the weights as they are now
    nan = values(ops.nan())
    assert nan.shape == (1,) and math.isnan(nan[0]) and nan.dtype == np.float32


def test_index_vectors_are_int64_and_made_once_per_key(backend):
    ops, _ = backend
    made = []
    def make(values):
        return lambda: made.append(values) or values
    first = ops.index(("k", 1), make([3, 1, 2]))
    again = ops.index(("k", 1), make([9, 9, 9]))
    other = ops.index(("k", 2), make([0]))
    assert values(first).tolist() == [3, 1, 2] and values(again).tolist() == [3, 1, 2] and values(other).tolist() == [0]
    assert values(first).dtype == np.int64 and made == [[3, 1, 2], [0]]


def test_the_cache_stays_bounded_and_remakes_what_it_dropped():
    cache, made = OpsCache(), []
    for k in range(numpy_ops._CACHE_LIMIT):
        assert cache.get((k,), lambda k=k: made.append(k) or f"v{k}") == f"v{k}"
    assert cache.get((0,), lambda: "new") == "v0"  # still held: the cache is full, not over
    assert len(made) == numpy_ops._CACHE_LIMIT
    cache.get(("one more",), lambda: "x")  # over the limit: everything older is dropped
    assert cache.get((0,), lambda: "remade") == "remade"
    assert len(cache._values) <= numpy_ops._CACHE_LIMIT


def test_ops_for_picks_numpy_on_the_cpu_and_one_torch_backend_per_device():
    cpu = torch.device("cpu")
    assert isinstance(ops_for(cpu), NumpyOps) and ops_for(cpu) is ops_for(cpu, True)
    torch_cpu = ops_for(cpu, prefer_numpy=False)
    assert isinstance(torch_cpu, TorchOps) and torch_cpu is ops_for(cpu, False) and torch_cpu.device == cpu
    assert torch_cpu.dtype == torch.float64
    assert TorchOps(torch.device("mps")).dtype == torch.float32  # MPS has no float64: it accumulates in float32


def test_both_backends_agree_on_a_mixed_batch():
    np_ops, t_ops = NumpyOps(), TorchOps(torch.device("cpu"))
    xs = [np.abs(x) for x in MIXED]
    for name in ("norms", "sums_of", "medians"):
        assert floats(getattr(np_ops, name)(xs)) == pytest.approx(floats(getattr(t_ops, name)([torch.as_tensor(x) for x in xs])), rel=1e-12)
    assert floats(np_ops.histograms(xs, -3, 5)) == floats(t_ops.histograms([torch.as_tensor(x) for x in xs], -3, 5))


def test_torch_results_stay_on_the_probes_device():
    """On a GPU a host tensor among device ones fails (or syncs): every result is made where the inputs are.
    The meta device stands in for a GPU here (no data, but devices are checked)."""
    meta = torch.device("meta")
    ops, x = TorchOps(meta), torch.empty(3, 4, device=meta)
    index = ops.index(("i",), lambda: [1, 2])
    results = [ops.nan(), index, ops.norms([x])[0], ops.sums_of([x])[0], ops.medians([x])[0], ops.abs([x])[0],
               *ops.inverse_root([x], [2.0], [1e-8], [0.1])[1], ops.histograms([x], -4, 7), ops.pad(ops.flat(x), 20),
               ops.sort_rows(x), *ops.minmax(x), ops.sum(x, (1,)), ops.norm(x, (1,)), ops.count(x > 0, (1,)),
               ops.nan_like_rows(x), ops.scalars([]), ops.scalars([x[0, 0]]), ops.concat([x]), ops.take(x, index)]
    assert [r.device for r in results] == [meta] * len(results)
