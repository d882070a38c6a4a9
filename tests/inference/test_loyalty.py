"""Loyalty rules, table-driven, on the edges: exactly RM50, exactly RM150, promotions, returns."""

from __future__ import annotations

import pytest

from inference.loyalty import CartLine, price_line, quote
from storewise.settings import LoyaltySettings

RULES = LoyaltySettings()  # RM10 fee or free above RM150; 10% off; gift above RM50; free shipping from RM50


@pytest.mark.parametrize(
    ("lines", "member", "subtotal", "shipping", "gift", "becomes_member", "missing"),
    [
        # exactly RM50: free shipping (50 or more), but no gift (above 50 only)
        ([CartLine("a", 1, 50.0)], False, 50.0, 0.0, None, False, ["free_membership"]),
        ([CartLine("a", 1, 55.56)], True, 50.0, 0.0, None, False, ["free_gift"]),
        ([CartLine("a", 1, 49.99)], False, 49.99, 8.0, None, False, ["free_shipping", "free_membership"]),
        ([CartLine("a", 1, 50.01)], True, 45.01, 8.0, None, False, ["free_shipping", "free_gift"]),
        ([CartLine("a", 1, 60.0)], True, 54.0, 0.0, "a free gift", False, []),
        # exactly RM150 does not make a member free; above it does
        ([CartLine("a", 3, 50.0)], False, 150.0, 0.0, None, False, ["free_membership"]),
        ([CartLine("a", 1, 150.01)], False, 150.01, 0.0, None, True, []),
        # a return takes the order under the free-shipping line
        (
            [CartLine("a", 1, 60.0), CartLine("b", -1, 20.0)],
            False,
            40.0,
            8.0,
            None,
            False,
            ["free_shipping", "free_membership"],
        ),
    ],
)
def test_quote_thresholds(
    lines: list[CartLine],
    member: bool,
    subtotal: float,
    shipping: float,
    gift: str | None,
    becomes_member: bool,
    missing: list[str],
) -> None:
    result = quote(lines, member, RULES, "RM")
    assert result.subtotal == subtotal
    assert result.shipping == shipping
    assert result.total == round(subtotal + shipping, 2)
    assert result.free_gift == gift
    assert result.becomes_member == becomes_member
    assert [gap.kind for gap in result.missing] == missing


def test_gap_texts_name_the_amount() -> None:
    result = quote([CartLine("a", 1, 41.50)], False, RULES, "RM")
    texts = {gap.kind: gap.text for gap in result.missing}
    assert texts["free_shipping"] == "RM8.50 more for free shipping"
    assert texts["free_membership"] == "RM108.51 more to become a member free (or join for RM10.00)"


@pytest.mark.parametrize(
    ("line", "member", "unit", "applied"),
    [
        (CartLine("a", 1, 100.0), False, 100.0, "base"),
        (CartLine("a", 1, 100.0), True, 90.0, "member"),
        (
            CartLine("a", 1, 100.0, promo_price=85.0),
            True,
            85.0,
            "promotion",
        ),  # a promotion better than 10%: no stacking
        (CartLine("a", 1, 100.0, promo_price=95.0), True, 90.0, "member"),
        (CartLine("a", 1, 100.0, promo_price=95.0), False, 95.0, "promotion"),
        (CartLine("a", 1, 100.0, promo_price=90.0), True, 90.0, "member"),  # a tie goes to the member price
    ],
)
def test_discounts_never_stack(line: CartLine, member: bool, unit: float, applied: str) -> None:
    priced = price_line(line, member, RULES, "RM")
    assert priced.unit_price == unit
    assert priced.applied == applied
