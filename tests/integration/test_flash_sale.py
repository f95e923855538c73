"""`make flash-sale`, smaller: many buyers check out the last units of one product at the
same moment, and exactly the stock is sold."""

from __future__ import annotations

import pytest

from shopctl.flash_sale import PRODUCT, flash_sale
from shopctl.local import LocalStack

pytestmark = pytest.mark.integration


def test_a_flash_sale_sells_exactly_the_stock(stack: LocalStack) -> None:
    sale, invariants = flash_sale(stack.settings, buyers=120, stock=30)
    assert sale.problems == []
    assert sale.answers.get(202) == 30 and sale.answers.get(409) == 90
    assert sale.outcomes == {"CONFIRMED": 30}
    assert sale.stock_left == 0, f"{PRODUCT} has {sale.stock_left} left"
    assert sale.peak_lag > 0 and sale.drained_after_s is not None
    assert invariants == 0
