import pytest

import nbdistill as nd
from nbdistill.core.registry import HParam


def test_methods_lists_all_and_by_family():
    assert {"kd.hinton", "kd.student_only"} <= set(nd.methods())
    assert all(m.startswith("kd.") for m in nd.methods("kd"))
    assert "kd" in nd.family_names()


def test_unknown_family_and_method_are_clear():
    with pytest.raises(nd.ConfigError, match="unknown family 'nope'"):
        nd.methods("nope")
    with pytest.raises(nd.ConfigError, match=r"unknown method 'kd.hintn'. Did you mean \['kd.hinton'"):
        nd.get_method("kd.hintn")


def test_declared_hparams_have_types_defaults_and_ranges():
    spec = nd.get_method("kd.hinton")
    hp = {h.name: h for h in spec.hparams}
    assert hp["temperature"].type is float and hp["temperature"].low == 1.0 and hp["temperature"].high == 20.0
    assert hp["alpha"].default == 0.1 and (hp["alpha"].low, hp["alpha"].high) == (0.0, 1.0)
    assert "lr" in hp and "weight_decay" in hp  # every method's optimiser settings
    assert spec.defaults()["temperature"] == 4.0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"temperature": 0.5}, r"'temperature' = 0.5 is outside its range \[1.0, 20.0\]"),
        ({"alpha": 1.5}, r"'alpha' = 1.5 is outside"),
        ({"alpha": "high"}, "must be a number"),
        ({"tempreature": 4}, r"unknown hyper-parameter\(s\) \['tempreature'\]"),
    ],
)
def test_check_hparams_rejects_bad_values(values, message):
    with pytest.raises(nd.ConfigError, match=message):
        nd.get_method("kd.hinton").check_hparams(values)


def test_hparam_types():
    assert HParam("n", int, 3, 1, 10).check(4.0, "m") == 4
    with pytest.raises(nd.ConfigError, match="integer"):
        HParam("n", int, 3, 1, 10).check(4.5, "m")
    with pytest.raises(nd.ConfigError, match="True or False"):
        HParam("b", bool, True).check(1, "m")
    with pytest.raises(nd.ConfigError, match="not one of"):
        HParam("s", str, "a", choices=("a", "b")).check("c", "m")
