"""Loyalty rules as pure functions of (customer, cart, prices, rules).

The same code prices a quote in the service and a basket anywhere else. Rules (defaults in
`config/loyalty.yaml`): members pay `member_discount` less than the base price; discounts
never stack (a line gets the better of the member price and a promotional price, and a
non-member gets the promotional price when there is one); members get a free gift on a
purchase *above* `free_gift_above` (what they pay for the goods); free shipping when the
goods come to `free_shipping_from` *or more* at the prices everyone pays (before the member
discount, so a member never pays more than a guest for the same cart: a discount cannot
push their order under the line); a purchase *above* `membership.free_above` makes a
customer a member free, from the next order.

Amounts are added in whole cents (integers), so the thresholds are exact (RM50.00 is free
shipping, RM49.99 is not) and the total is exactly the lines plus shipping. A line's
quantity is at least 1 and its prices finite and not negative (`CartLine` refuses anything
else, naming the field); these invariants are proved for every input by property-based
tests (tests/inference/test_loyalty.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from storewise.settings import LoyaltySettings

Applied = Literal["base", "member", "promotion"]


@dataclass(frozen=True)
class CartLine:
    item_id: str
    quantity: int
    base_price: float
    promo_price: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.quantity, int) or isinstance(self.quantity, bool) or self.quantity < 1:
            raise ValueError(f"quantity must be a whole number of at least 1, got {self.quantity!r}")
        for name in ("base_price", "promo_price"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite amount of at least 0, got {value!r}")


@dataclass(frozen=True)
class PricedLine:
    item_id: str
    quantity: int
    base_price: float
    member_price: float
    promo_price: float | None
    unit_price: float
    applied: Applied
    amount: float
    reason: str


@dataclass(frozen=True)
class Missing:
    kind: Literal["free_shipping", "free_membership", "free_gift"]
    amount: float
    text: str


@dataclass(frozen=True)
class Quote:
    lines: list[PricedLine]
    subtotal: float
    shipping: float
    free_gift: str | None
    total: float
    is_member: bool
    becomes_member: bool
    applied: list[str] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)


def money(amount: float, currency: str) -> str:
    return f"{currency}{amount:,.2f}" if len(currency) <= 2 else f"{currency} {amount:,.2f}"


def in_cents(amount: float) -> int:
    """An amount in whole cents, half a cent rounding up (10.005 is 1001)."""
    return math.floor(amount * 100 + 0.5 + 1e-7)


def member_price(base_price: float, rules: LoyaltySettings) -> float:
    return in_cents(in_cents(base_price) * (1 - rules.member_discount) / 100) / 100


# on equal prices: the member price (the benefit that needs no promotion), then the promotion
PREFERENCE = {"member": 0, "promotion": 1, "base": 2}


def price_line(line: CartLine, is_member: bool, rules: LoyaltySettings, currency: str) -> PricedLine:
    """The price a customer pays for one line: the best of the prices they may have (one of
    them, never one discount on top of another), in whole cents."""
    base = in_cents(line.base_price)
    member = in_cents(base * (1 - rules.member_discount) / 100)
    promo = None if line.promo_price is None else in_cents(line.promo_price)
    options: list[tuple[int, Applied]] = [(base, "base")]
    if promo is not None and promo < base:
        options.append((promo, "promotion"))
    if is_member:
        options.append((member, "member"))
    # the cheapest wins; on a tie the member price (the benefit that needs no promotion)
    unit, applied = min(options, key=lambda option: (option[0], PREFERENCE[option[1]]))
    if applied == "base":
        reason = "base price"
    elif applied == "member":
        reason = f"member price: {rules.member_discount:.0%} off {money(base / 100, currency)}"
    else:
        reason = "promotional price" + (" (better than the member price)" if is_member else "")
    return PricedLine(
        line.item_id,
        line.quantity,
        base / 100,
        member / 100,
        None if promo is None else promo / 100,
        unit / 100,
        applied,
        unit * line.quantity / 100,
        reason,
    )


def quote(lines: list[CartLine], is_member: bool, rules: LoyaltySettings, currency: str) -> Quote:
    priced = [price_line(line, is_member, rules, currency) for line in lines]
    paid = sum(in_cents(line.amount) for line in priced)
    # what the goods cost at the prices everyone pays (promotions, no member discount)
    everyone = sum(
        in_cents(line.unit_price if line.applied != "member" else everyone_price(line)) * line.quantity
        for line in priced
    )
    applied: list[str] = []
    missing: list[Missing] = []
    saved = sum(in_cents(line.base_price) * line.quantity for line in priced) - paid
    if saved > 0:
        kinds = sorted({line.applied for line in priced if line.applied != "base"})
        applied.append(
            f"{' and '.join(kinds)} prices save {money(saved / 100, currency)} (discounts never stack: each line gets its best price)"
        )
    shipping = shipping_cents(everyone, rules, currency, applied, missing)
    gift = free_gift(paid, is_member, rules, currency, applied, missing)
    becomes_member = not is_member and free_membership(paid, rules, currency, applied, missing)
    return Quote(
        priced,
        paid / 100,
        shipping / 100,
        gift,
        (paid + shipping) / 100,
        is_member,
        becomes_member,
        applied,
        missing,
    )


def everyone_price(line: PricedLine) -> float:
    """The line's unit price for a customer who is not a member."""
    if line.promo_price is not None and line.promo_price < line.base_price:
        return line.promo_price
    return line.base_price


def shipping_cents(
    goods: int, rules: LoyaltySettings, currency: str, applied: list[str], missing: list[Missing]
) -> int:
    line = in_cents(rules.free_shipping_from)
    if goods >= line:
        applied.append(
            f"free shipping: {money(goods / 100, currency)} is at least {money(line / 100, currency)}"
        )
        return 0
    gap = (line - goods) / 100
    missing.append(Missing("free_shipping", gap, f"{money(gap, currency)} more for free shipping"))
    return in_cents(rules.shipping_fee)


def free_gift(
    paid: int,
    is_member: bool,
    rules: LoyaltySettings,
    currency: str,
    applied: list[str],
    missing: list[Missing],
) -> str | None:
    if not is_member:
        return None
    line = in_cents(rules.free_gift_above)
    if paid > line:
        applied.append(
            f"free gift for members on orders above {money(line / 100, currency)}: {rules.free_gift}"
        )
        return rules.free_gift
    gap = (line - paid + 1) / 100
    missing.append(Missing("free_gift", gap, f"{money(gap, currency)} more for a free gift"))
    return None


def free_membership(
    paid: int, rules: LoyaltySettings, currency: str, applied: list[str], missing: list[Missing]
) -> bool:
    line = in_cents(rules.membership.free_above)
    if paid > line:
        applied.append(
            f"this order (above {money(line / 100, currency)}) makes you a member free: "
            f"{rules.member_discount:.0%} off from your next order"
        )
        return True
    gap = (line - paid + 1) / 100
    missing.append(
        Missing(
            "free_membership",
            gap,
            f"{money(gap, currency)} more to become a member free "
            f"(or join for {money(rules.membership.fee, currency)})",
        )
    )
    return False
