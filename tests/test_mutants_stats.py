"""The probe's reductions (nntui/engine/probes/stats.py) on small hand-made tensors, through both backends, against
plain numpy: five-number summaries (ties, zeros, negatives, a sampled tensor, NaN and empty ones), activation mean,
std, saturation and dead units per kind (values on the thresholds), norms, update ratio, optimizer fields and the
|grad| histogram, for several layers of which two share a shape and two share an activation group (issue 15,
item 5: scripts/mutation.sh stats runs these per mutant)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nntui.engine.probes import stats
from nntui.engine.probes.numpy_ops import NumpyOps
from nntui.engine.probes.torch_ops import TorchOps

NAMES = ["fc1", "fc2", "fc3", "fc4", "fc5", "fc6"]
# per layer: (index among optimizer norms of the momentum, of the first moment), -1 for none
OPT_SLOTS = [(0, 1), (-1, 2), (3, -1), (-1, -1), (4, 5), (-1, -1)]
SECOND = [(1, 80), (4, 21)]  # layers with a second moment: (layer, elements)
WEIGHT_NORMS = [1.5, 0.0, 2.0, 3.0, 0.5, 4.0]
OPT_NORMS = [0.11, 0.12, 0.13, 0.14, 0.15, 0.16]
V_SUMS = [8.0, 0.84]
STEP_MEDIANS = [1e-3, 2e-3]


def case() -> dict:
    """Gradients, updates, layer inputs and activations of six layers, as float32 numpy arrays."""
    rng = np.random.default_rng(7)
    grads = [rng.normal(0, 10.0 ** -k, size=shape).astype(np.float32) for k, shape in
             enumerate([(40, 16), (8, 10), (8, 10), (7, 8), (3, 7), (2, 3)])]
    grads[1][0, :4] = 0.0  # ties at zero
    grads[2][1, :] = -grads[2][0, :]  # ties in |grad| from opposite signs
    grads[4][0, 0] = 2.0 ** -30
    grads[5][1, 2] = np.nan  # this layer's gradient is not finite
    updates = [rng.normal(0, 0.01 * (k + 1), size=g.shape).astype(np.float32) for k, g in enumerate(grads)]
    inputs = [rng.normal(1.0, 2.0, size=shape).astype(np.float32) for shape in [(6, 16), (6, 100), (6, 10), (6, 8), (6, 7), (0, 3)]]
    sig = 1 / (1 + np.exp(-rng.normal(0, 4, size=(2, 6, 10))))
    sig[0, :, 3] = 0.995  # a unit saturated on every example
    sig[1, 0, :2] = [0.99, 0.01]  # on the thresholds: saturated
    relu = np.maximum(rng.normal(0, 1, size=(6, 8)), 0)
    relu[:, 2] = 0.0  # dead: never positive
    relu[:, 5] = np.where(np.arange(6) == 3, 0.5, 0.0)  # positive once: alive
    tanh = np.tanh(rng.normal(0, 2, size=(6, 7)))
    tanh[:, 1] = np.where(np.arange(6) % 2 == 0, 0.99, -0.999)  # |x| >= 0.99 throughout: dead
    tanh[0, 4] = -0.99
    output = rng.normal(-3, 1, size=(6, 3))
    outputs = [("sigmoid", sig[0]), ("relu", relu), ("sigmoid", sig[1]), ("tanh", tanh), ("output", output), None]
    return {"grads": grads, "updates": updates, "inputs": inputs, "outputs": outputs}


def reduce_and_decode(ops, as_array, data: dict) -> list[dict]:
    layout = stats.ProbeLayout(len(NAMES), OPT_SLOTS, SECOND)
    state_norms = [as_array(np.float64(x)) for x in [*WEIGHT_NORMS, *OPT_NORMS, *V_SUMS, *STEP_MEDIANS]]
    outputs = [None if o is None else (o[0], as_array(o[1])) for o in data["outputs"]]
    values = stats.reduce_step(ops, layout, state_norms, [as_array(g) for g in data["grads"]],
                               [as_array(u) for u in data["updates"]], [as_array(x) for x in data["inputs"]], outputs)
    return stats.decode(ops.to_list([values]), layout, NAMES)


BACKENDS = {
    "numpy": lambda: (NumpyOps(), lambda a: a),
    "torch": lambda: (TorchOps(torch.device("cpu")), lambda a: torch.as_tensor(a)),
}


def five(values: np.ndarray) -> list[float]:
    flat = np.asarray(values, dtype=np.float64).ravel()
    return [flat.min(), *np.quantile(flat, [0.25, 0.5, 0.75]), flat.max()]


def histogram(values: np.ndarray) -> list[int]:
    edges = [0.0, *(2.0 ** k for k in range(-40, 8)), math.inf]
    return np.histogram(np.abs(values.astype(np.float64)).ravel(), bins=edges)[0].tolist()


SATURATED = {"sigmoid": lambda a: (a <= 0.01) | (a >= 0.99), "tanh": lambda a: np.abs(a) >= 0.99}


def expected_activation(kind: str, a: np.ndarray) -> list:
    mean, std = a.mean(), a.std(ddof=1)
    if kind in SATURATED:
        sat = SATURATED[kind](a)
        return [mean, std, sat.mean(), sat.all(axis=0).mean()]
    if kind == "relu":
        return [mean, std, None, (a <= 0).all(axis=0).mean()]
    return [mean, std, None, None]


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_every_field_of_every_layer_matches_numpy(backend):
    data = case()
    ops, as_array = BACKENDS[backend]()
    layers = reduce_and_decode(ops, as_array, data)
    assert [layer["name"] for layer in layers] == NAMES
    second = {layer: k for k, (layer, _) in enumerate(SECOND)}
    for i, layer in enumerate(layers):
        g, u, x = data["grads"][i], data["updates"][i], data["inputs"][i]
        finite = bool(np.isfinite(g).all())
        want = {
            "weight_norm": WEIGHT_NORMS[i],
            "grad_norm": float(np.linalg.norm(g.astype(np.float64))) if finite else None,
            "update_norm": float(np.linalg.norm(u.astype(np.float64))),
            "update_ratio": float(np.linalg.norm(u.astype(np.float64))) / WEIGHT_NORMS[i] if WEIGHT_NORMS[i] else None,
            "momentum_norm": OPT_NORMS[OPT_SLOTS[i][0]] if OPT_SLOTS[i][0] >= 0 else None,
            "exp_avg_norm": OPT_NORMS[OPT_SLOTS[i][1]] if OPT_SLOTS[i][1] >= 0 else None,
            "exp_avg_sq_rms": math.sqrt(V_SUMS[second[i]] / SECOND[second[i]][1]) if i in second else None,
            "effective_lr": STEP_MEDIANS[second[i]] if i in second else None,
        }
        found = data["outputs"][i]
        activation = expected_activation(found[0], found[1]) if found is not None else [None] * 4
        want.update(zip(("act_mean", "act_std", "saturation", "dead"), activation))
        for key, value in want.items():
            if value is None:
                assert layer[key] is None, (layer["name"], key)
            else:
                assert layer[key] == pytest.approx(value, rel=1e-6, abs=1e-12), (layer["name"], key)
        if not finite:
            assert layer["grad"] == [None] * 5 and layer["grad_hist"] is None
        else:
            assert layer["grad_hist"] == {"log2_min": -40, "counts": histogram(g)}
            if g.size <= 512:  # exact quartiles, as numpy's linear interpolation
                assert layer["grad"] == pytest.approx(five(np.abs(g)), rel=1e-6, abs=1e-30), layer["name"]
        if x.size == 0:
            assert layer["act"] == [None] * 5
        elif x.size <= 512:
            assert layer["act"] == pytest.approx(five(x), rel=1e-6), layer["name"]


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_tensor_over_512_elements_has_exact_ends_and_quartiles_of_a_fixed_sample(backend):
    data = case()
    first = reduce_and_decode(*BACKENDS[backend](), data)
    again = reduce_and_decode(*BACKENDS[backend](), case())  # fresh backend: nothing cached
    for layer, values in ((first[0]["grad"], np.abs(data["grads"][0])), (first[1]["act"], data["inputs"][1])):
        flat = np.sort(values.astype(np.float64).ravel())
        assert flat.size > 512
        assert layer[0] == flat[0] and layer[4] == flat[-1]
        for q, value in zip((0.25, 0.5, 0.75), layer[1:4]):
            rank = np.searchsorted(flat, value) / flat.size  # a sample of 512: within four standard errors
            assert abs(rank - q) < 0.09, (q, rank)
            assert flat[0] <= value <= flat[-1]
    assert first[0]["grad"] == again[0]["grad"] and first[1]["act"] == again[1]["act"]


def test_both_backends_sample_the_same_elements():
    data = case()
    a = reduce_and_decode(*BACKENDS["numpy"](), data)
    b = reduce_and_decode(*BACKENDS["torch"](), data)
    assert a[0]["grad"] == pytest.approx(b[0]["grad"], rel=1e-7) and a[1]["act"] == pytest.approx(b[1]["act"], rel=1e-7)


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 511, 512])
def test_five_numbers_of_up_to_512_elements_are_exact(backend, size):
    ops, as_array = BACKENDS[backend]()
    rng = np.random.default_rng(size)
    values = [np.round(rng.normal(0, 3, size=size), 1).astype(np.float32) for _ in range(2)]  # rounded: ties
    ends, around, sizes = stats.five_number_parts(ops, [as_array(np.abs(values[0]))], [as_array(values[1])])
    flat = ops.to_list([ops.scalars(list(ends)), around])
    rows = stats.five_numbers_from(flat[:4], flat[4:], sizes)  # both minima, both maxima, then the quartiles' neighbours
    assert sizes == (size, size)
    assert rows[0] == pytest.approx(five(np.abs(values[0])), rel=1e-6, abs=1e-12)
    assert rows[1] == pytest.approx(five(values[1]), rel=1e-6, abs=1e-12)


def test_a_nan_row_leaves_the_others_in_place():
    # three tensors of 4, 1 and 4 elements; the middle one NaN (its min and max are NaN)
    ends = [1.0, math.nan, 10.0, 4.0, math.nan, 40.0]
    around = [0.0] * (3 * 3 * 2)
    for row, values in ((0, [1.0, 2.0, 3.0, 4.0]), (2, [10.0, 20.0, 30.0, 40.0])):
        for j, (lo, hi) in enumerate([(0, 1), (1, 2), (2, 3)]):  # ranks 0.75, 1.5, 2.25 of 4 sorted values
            around[2 * (3 * row + j)], around[2 * (3 * row + j) + 1] = values[lo], values[hi]
    rows = stats.five_numbers_from(ends, around, (4, 1, 4))
    assert len(rows) == 3 and all(math.isnan(v) for v in rows[1]) and len(rows[1]) == 5
    assert rows[0] == pytest.approx([1.0, 1.75, 2.5, 3.25, 4.0])
    assert rows[2] == pytest.approx([10.0, 17.5, 25.0, 32.5, 40.0])
    assert all(math.isnan(v) for v in stats.five_numbers_from([math.nan, 2.0], [5.0] * 6, (3,))[0])
    assert all(math.isnan(v) for v in stats.five_numbers_from([2.0, math.nan], [5.0] * 6, (3,))[0])


@pytest.mark.parametrize(("batch", "units"), [(1, 1), (2, 1), (1, 3), (3, 2)])
def test_activation_mean_std_and_fractions_for_small_layers(batch, units):
    values = np.arange(1.0, batch * units + 1).reshape(batch, units) * np.array([1.0, -2.0, 0.5])[:units]
    total, norm = float(values.sum()), math.sqrt((values**2).sum())  # floats, as read back (numpy's would divide 0 by 0 quietly)
    mean, std, saturated, dead = stats.activation_stats_from(total, norm, 2.0, 1.0, batch, units, "output")
    assert mean == pytest.approx(values.mean())
    assert (math.isnan(std) if values.size == 1 else std == pytest.approx(values.std(ddof=1)))
    assert saturated == pytest.approx(2.0 / values.size) and dead == pytest.approx(1.0 / units)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_a_constant_activation_has_zero_spread_about_its_centre(kind):
    """Moments about the centre: 0.5 + 1e-9 everywhere has a std of 0, not a rounding error's square root."""
    value = {"sigmoid": 0.5, "tanh": 0.0}[kind] + 3e-9
    ops = NumpyOps()
    stacked = np.full((1, 4, 5), value)
    total, norm, saturated, dead = np.asarray(stats.activation_parts(ops, stacked, kind), dtype=float)
    mean, std, sat, dead_fraction = stats.activation_stats_from(total, norm, saturated, dead, 4, 5, kind)
    assert mean == pytest.approx(value, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    assert sat == 0.0 and dead_fraction == 0.0


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_activation_parts_count_saturated_and_dead_units_per_layer(backend):
    ops, as_array = BACKENDS[backend]()
    relu = np.array([[[0.0, 0.5, -0.0, 2.0], [0.0, 0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0, 3.0], [1.0, 0.0, 0.0, 0.25]]])
    got = np.asarray(ops.to_list([stats.activation_parts(ops, as_array(relu), "relu")])).reshape(4, 2)
    assert got[0].tolist() == pytest.approx(relu.sum(axis=(1, 2)).tolist())
    assert got[1].tolist() == pytest.approx(np.sqrt((relu**2).sum(axis=(1, 2))).tolist())
    assert np.isnan(got[2]).all()
    assert got[3].tolist() == [2.0, 2.0]  # layer 0: units 0 and 2 never positive; layer 1: units 1 and 2
    tanh = np.array([[[0.99, -0.5, 0.0], [-0.995, 0.2, 0.99]], [[0.1, -0.99, 0.98], [0.2, -1.0, -0.989]]])
    got = np.asarray(ops.to_list([stats.activation_parts(ops, as_array(tanh), "tanh")])).reshape(4, 2)
    assert got[2].tolist() == [3.0, 2.0] and got[3].tolist() == [1.0, 1.0]
    sigmoid = np.array([[[0.99, 0.25, 0.5], [0.0025, 0.6, 0.99]], [[0.55, 0.01, 0.985], [0.6, 0.0, 0.011]]])
    got = np.asarray(ops.to_list([stats.activation_parts(ops, as_array(sigmoid), "sigmoid")])).reshape(4, 2)
    assert got[0].tolist() == pytest.approx((sigmoid - 0.5).sum(axis=(1, 2)).tolist(), abs=1e-12)
    assert got[1].tolist() == pytest.approx(np.sqrt(((sigmoid - 0.5) ** 2).sum(axis=(1, 2))).tolist())
    assert got[2].tolist() == [3.0, 2.0] and got[3].tolist() == [1.0, 1.0]  # 0.01 and 0.99 count as saturated
    output = np.array([[[-1.0, -2.0], [-3.0, -4.0]]])
    got = ops.to_list([stats.activation_parts(ops, as_array(output), "output")])
    assert got[:2] == pytest.approx([-10.0, math.sqrt(30.0)]) and all(math.isnan(v) for v in got[2:])


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_activations_of_other_shapes_or_ranks_are_skipped(backend):
    ops, as_array = BACKENDS[backend]()
    data = case()
    data["outputs"][1] = ("relu", np.zeros((0, 8)))  # an empty batch
    data["outputs"][3] = ("tanh", np.zeros((6, 7, 2)))  # not (batch, units)
    data["outputs"][4] = ("output", np.array([[1.0, -2.0, 4.0]]))  # a batch of one example counts
    layers = reduce_and_decode(ops, as_array, data)
    assert layers[1]["dead"] is None and layers[3]["act_mean"] is None
    assert layers[4]["act_mean"] == pytest.approx(1.0) and layers[4]["act_std"] == pytest.approx(3.0)
    assert layers[0]["act_mean"] is not None and layers[2]["act_mean"] is not None


def test_sample_positions_are_a_sorted_fixed_sample_without_repeats():
    for n in (513, 1000, 50_176):
        positions = stats.sample_positions(n)
        assert len(positions) == 512 and len(set(positions.tolist())) == 512
        assert positions.min() >= 0 and positions.max() < n and (np.diff(positions) > 0).all()
        assert (positions == stats.sample_positions(n)).all()
    assert not np.array_equal(stats.sample_positions(1000), np.arange(512))  # spread over the tensor, not its start


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_one_backend_serves_models_of_different_sizes_in_turn(backend):
    """The CPU backend is shared by every probe of a process (variants of different widths): nothing cached for one
    model's tensor sizes may be reused for another's."""
    ops, as_array = BACKENDS[backend]()
    rng = np.random.default_rng(3)
    for shapes in ([(4,), (9,)], [(6, 3), (2, 2), (700,)], [(4,), (9,)], [(5,), (30, 30)]):
        values = [rng.normal(0, 1, size=shape).astype(np.float32) for shape in shapes]
        grads, inputs = values[:1], values[1:]
        ends, around, sizes = stats.five_number_parts(ops, [as_array(np.abs(g)) for g in grads], [as_array(x) for x in inputs])
        k = 2 * len(values)
        flat = ops.to_list([ops.scalars(list(ends)), around])
        rows = stats.five_numbers_from(flat[:k], flat[k:], sizes)
        for row, v in zip(rows, [np.abs(grads[0]), *inputs]):
            if v.size <= 512:
                assert row == pytest.approx(five(v), rel=1e-6), shapes
            else:
                assert row[0] == v.min() and row[4] == v.max() and v.min() <= row[2] <= v.max()
