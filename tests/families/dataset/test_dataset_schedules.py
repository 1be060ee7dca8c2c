"""Schedules: CDA's crop curriculum, DATM's growing window, AST's clipping and balance weights."""

import itertools
import math

import pytest

from nbdistill.core.errors import ConfigError
from nbdistill.families.dataset.schedules import (
    ast_balance_weight,
    ast_clip_factor,
    cda_min_crop,
    datm_upper_bound,
)


@pytest.mark.parametrize("mode", ["cosine", "linear", "step"])
def test_cda_min_crop_is_monotone_and_ends_at_0_08(mode):
    values = [cda_min_crop(i / 100, 0.5, mode) for i in range(101)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert values[-1] == 0.08 and values[50] == 0.08
    assert values[0] == 1.0
    with pytest.raises(ConfigError):
        cda_min_crop(0.1, 0.5, "exp")


def test_cda_min_crop_midway_by_hand():
    assert cda_min_crop(0.25, 0.5, "linear") == pytest.approx(0.08 + 0.92 * 0.5)
    assert cda_min_crop(0.25, 0.5, "cosine") == pytest.approx(0.08 + 0.92 * 0.5)  # cos(π/2) = 0
    assert cda_min_crop(0.125, 0.5, "cosine") == pytest.approx(0.08 + 0.92 * (1 + math.cos(math.pi / 4)) / 2)


def test_datm_window_grows_linearly_then_stays():
    assert [datm_upper_bound(it, 10, 20, 1000) for it in (0, 500, 999, 1000, 5000)] == [10, 15, 19, 20, 20]
    assert datm_upper_bound(3, 10, 20, 0) == 20


def test_ast_clip_factor_and_balance_weight():
    assert [ast_clip_factor(e) for e in (0, 1, 9, 10, 30)] == pytest.approx([0.5, 0.55, 0.95, 1.0, 1.0])
    assert ast_balance_weight(10, 20) == pytest.approx(math.log(8, 5))  # start = T⁺/2: log₅ 8
    assert ast_balance_weight(14, 20) == pytest.approx(math.log(12, 5))
    assert ast_balance_weight(6, 20) == pytest.approx(1 / math.log(12, 5))
