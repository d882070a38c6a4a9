"""Loyalty rules: table-driven on the edges (exactly RM50, exactly RM150, promotions), and
their invariants proved for every input by property-based tests (hypothesis): a total is
never negative, a member never pays more than a guest for the same cart, discounts never
stack, the RM50 and RM150 boundaries are exact, the total is the lines plus shipping."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from inference.loyalty import CartLine, price_line, quote
from storewise.settings import LoyaltySettings

RULES = LoyaltySettings()  # RM10 fee or free above RM150; 10% off; gift above RM50; free shipping from RM50
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize(
    ("lines", "member", "subtotal", "shipping", "gift", "becomes_member", "missing"),
    [
        # exactly RM50: free shipping (50 or more), but no gift (above 50 only)
        ([CartLine("a", 1, 50.0)], False, 50.0, 0.0, None, False, ["free_membership"]),
        # a member pays RM50.00 for goods of RM55.56: free shipping (measured before the
        # member discount), no gift (measured on what they pay)
        ([CartLine("a", 1, 55.56)], True, 50.0, 0.0, None, False, ["free_gift"]),
        ([CartLine("a", 1, 49.99)], False, 49.99, 8.0, None, False, ["free_shipping", "free_membership"]),
        # goods of RM50.01 ship free for a member too, though the member pays RM45.01
        ([CartLine("a", 1, 50.01)], True, 45.01, 0.0, None, False, ["free_gift"]),
        ([CartLine("a", 1, 60.0)], True, 54.0, 0.0, "a free gift", False, []),
        # exactly RM150 does not make a member free; above it does
        ([CartLine("a", 3, 50.0)], False, 150.0, 0.0, None, False, ["free_membership"]),
        ([CartLine("a", 1, 150.01)], False, 150.01, 0.0, None, True, []),
        # a promotion counts toward free shipping: the goods cost RM45 for everyone
        (
            [CartLine("a", 1, 60.0, promo_price=45.0)],
            False,
            45.0,
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


@pytest.mark.parametrize(
    ("field", "line"),
    [
        ("quantity", {"quantity": 0}),
        ("quantity", {"quantity": -3}),
        ("quantity", {"quantity": True}),
        ("base_price", {"base_price": -0.01}),
        ("base_price", {"base_price": math.nan}),
        ("base_price", {"base_price": math.inf}),
        ("promo_price", {"promo_price": -5.0}),
    ],
)
def test_a_line_that_means_nothing_is_refused_naming_the_field(field: str, line: dict[str, object]) -> None:
    values: dict[str, object] = {"item_id": "a", "quantity": 1, "base_price": 10.0, **line}
    with pytest.raises(ValueError, match=field):
        CartLine(**values)  # type: ignore[arg-type]


# -- invariants, for every input --------------------------------------------------------

money_cents = st.integers(min_value=0, max_value=200_000)  # RM0.00 to RM2,000.00
lines_strategy = st.lists(
    st.builds(
        lambda index, base, promo, quantity: CartLine(
            f"item-{index}", quantity, base / 100, None if promo is None else promo / 100
        ),
        st.integers(0, 50),
        money_cents,
        st.none() | money_cents,
        st.integers(min_value=1, max_value=1000),
    ),
    min_size=1,
    max_size=12,
)
rules_strategy = st.builds(
    LoyaltySettings,
    member_discount=st.sampled_from([0.0, 0.05, 0.10, 0.15, 0.333, 0.5, 0.99]),
    shipping_fee=st.sampled_from([0.0, 4.99, 8.0, 15.0]),
)


def cents(amount: float) -> int:
    value = amount * 100
    assert abs(value - round(value)) < 1e-6, f"{amount} is not a whole number of cents"
    return round(value)


@PROPERTY
@given(lines_strategy, st.booleans(), rules_strategy)
def test_a_total_is_never_negative_and_is_the_lines_plus_shipping(
    lines: list[CartLine], member: bool, rules: LoyaltySettings
) -> None:
    result = quote(lines, member, rules, "RM")
    assert result.total >= 0
    assert result.shipping >= 0
    assert cents(result.subtotal) == sum(cents(line.amount) for line in result.lines)
    assert cents(result.total) == cents(result.subtotal) + cents(result.shipping)
    for line in result.lines:
        assert cents(line.amount) == cents(line.unit_price) * line.quantity


@PROPERTY
@given(lines_strategy, rules_strategy)
def test_a_member_never_pays_more_than_a_guest_for_the_same_cart(
    lines: list[CartLine], rules: LoyaltySettings
) -> None:
    as_member = quote(lines, True, rules, "RM")
    as_guest = quote(lines, False, rules, "RM")
    assert as_member.total <= as_guest.total
    assert as_member.shipping == as_guest.shipping
    for mine, theirs in zip(as_member.lines, as_guest.lines, strict=True):
        assert mine.unit_price <= theirs.unit_price


@PROPERTY
@given(lines_strategy, st.booleans(), rules_strategy)
def test_discounts_never_stack_for_any_line(
    lines: list[CartLine], member: bool, rules: LoyaltySettings
) -> None:
    """Each line's unit price is exactly one of the prices the customer may have (base,
    promotion, member), the cheapest of them: never one discount applied on another."""
    for line in quote(lines, member, rules, "RM").lines:
        offers = {"base": line.base_price, "member": line.member_price}
        if line.promo_price is not None and line.promo_price < line.base_price:
            offers["promotion"] = line.promo_price
        allowed = {kind: price for kind, price in offers.items() if kind != "member" or member}
        assert line.unit_price == allowed[line.applied]
        assert line.unit_price == min(allowed.values())
        assert cents(line.member_price) == math.floor(
            cents(line.base_price) * (1 - rules.member_discount) + 0.5 + 1e-7
        )


def cart_worth(target_cents: int, filler: list[tuple[int, int]]) -> list[CartLine]:
    """A cart whose goods come to exactly `target_cents`: the filler lines while they fit,
    then one line of the rest."""
    lines, left = [], target_cents
    for index, (price, quantity) in enumerate(filler):
        if 0 < price * quantity <= left - 1:
            lines.append(CartLine(f"f{index}", quantity, price / 100))
            left -= price * quantity
    lines.append(CartLine("rest", 1, left / 100))
    return lines


filler_strategy = st.lists(st.tuples(st.integers(1, 9_999), st.integers(1, 5)), max_size=6)


@PROPERTY
@given(st.integers(-3, 3), filler_strategy, st.booleans())
@example(0, [], False)
@example(-1, [(2499, 2)], True)
def test_free_shipping_starts_exactly_at_rm50_of_goods(
    offset: int, filler: list[tuple[int, int]], member: bool
) -> None:
    lines = cart_worth(5000 + offset, filler)
    result = quote(lines, member, RULES, "RM")
    assert (result.shipping == 0) is (offset >= 0)
    assert ("free_shipping" in [gap.kind for gap in result.missing]) is (offset < 0)
    if offset < 0:
        gap = next(gap for gap in result.missing if gap.kind == "free_shipping")
        assert cents(gap.amount) == -offset


@PROPERTY
@given(st.integers(-3, 3), filler_strategy)
@example(0, [])
@example(1, [])
def test_free_membership_starts_just_above_rm150(offset: int, filler: list[tuple[int, int]]) -> None:
    result = quote(cart_worth(15000 + offset, filler), False, RULES, "RM")
    assert result.becomes_member is (offset > 0)
    if offset <= 0:
        gap = next(gap for gap in result.missing if gap.kind == "free_membership")
        assert cents(gap.amount) == 1 - offset  # the cents that take it above RM150


@PROPERTY
@given(st.integers(-3, 3), filler_strategy)
def test_a_members_gift_starts_just_above_rm50_paid(offset: int, filler: list[tuple[int, int]]) -> None:
    # member_discount 0: what the member pays is the goods' price, built exactly
    rules = LoyaltySettings(member_discount=0.0)
    result = quote(cart_worth(5000 + offset, filler), True, rules, "RM")
    assert (result.free_gift is not None) is (offset > 0)
