"""Loyalty rules as pure functions of (customer, cart, prices, rules).

The same code prices a quote in the service and a basket anywhere else. Rules (defaults in
`config/loyalty.yaml`): members pay `member_discount` less than the base price; discounts
never stack (a line gets the better of the member price and a promotional price, and a
non-member gets the promotional price when there is one); members get a free gift on a
purchase *above* `free_gift_above`; everyone gets free shipping from `free_shipping_from`
*or more*; a purchase *above* `membership.free_above` makes a customer a member free, from
the next order. A line with a negative quantity is a return: it counts against the
thresholds at the price it was bought.
"""

from __future__ import annotations

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


def cents(amount: float) -> float:
    return round(amount + 1e-9, 2)


def member_price(base_price: float, rules: LoyaltySettings) -> float:
    return cents(base_price * (1 - rules.member_discount))


# on equal prices: the member price (the benefit that needs no promotion), then the promotion
PREFERENCE = {"member": 0, "promotion": 1, "base": 2}


def price_line(line: CartLine, is_member: bool, rules: LoyaltySettings, currency: str) -> PricedLine:
    """The price a customer pays for one line: the best of the prices they may have."""
    member = member_price(line.base_price, rules)
    options: list[tuple[float, Applied]] = [(line.base_price, "base")]
    if line.promo_price is not None and line.promo_price < line.base_price:
        options.append((line.promo_price, "promotion"))
    if is_member:
        options.append((member, "member"))
    # the cheapest wins; on a tie the member price (the benefit that needs no promotion)
    unit, applied = min(options, key=lambda option: (option[0], PREFERENCE[option[1]]))
    if applied == "base":
        reason = "base price"
    elif applied == "member":
        reason = f"member price: {rules.member_discount:.0%} off {money(line.base_price, currency)}"
    else:
        reason = "promotional price" + (" (better than the member price)" if is_member else "")
    return PricedLine(
        line.item_id,
        line.quantity,
        line.base_price,
        member,
        line.promo_price,
        unit,
        applied,
        cents(unit * line.quantity),
        reason,
    )


def quote(lines: list[CartLine], is_member: bool, rules: LoyaltySettings, currency: str) -> Quote:
    priced = [price_line(line, is_member, rules, currency) for line in lines]
    subtotal = cents(sum(line.amount for line in priced))
    applied: list[str] = []
    missing: list[Missing] = []
    saved = cents(
        sum((line.base_price * line.quantity) - line.amount for line in priced if line.quantity > 0)
    )
    if saved > 0:
        kinds = sorted({line.applied for line in priced if line.applied != "base"})
        applied.append(
            f"{' and '.join(kinds)} prices save {money(saved, currency)} (discounts never stack: each line gets its best price)"
        )

    shipping = rules.shipping_fee if 0 < subtotal < rules.free_shipping_from else 0.0
    if subtotal >= rules.free_shipping_from:
        applied.append(
            f"free shipping: {money(subtotal, currency)} is at least {money(rules.free_shipping_from, currency)}"
        )
    elif subtotal > 0:
        gap = cents(rules.free_shipping_from - subtotal)
        missing.append(Missing("free_shipping", gap, f"{money(gap, currency)} more for free shipping"))

    gift = None
    if is_member and subtotal > rules.free_gift_above:
        gift = rules.free_gift
        applied.append(
            f"free gift for members on orders above {money(rules.free_gift_above, currency)}: {rules.free_gift}"
        )
    elif is_member and subtotal > 0:
        gap = cents(rules.free_gift_above - subtotal + 0.01)
        missing.append(Missing("free_gift", gap, f"{money(gap, currency)} more for a free gift"))

    becomes_member = False
    if not is_member:
        if subtotal > rules.membership.free_above:
            becomes_member = True
            applied.append(
                f"this order (above {money(rules.membership.free_above, currency)}) makes you a member free: "
                f"{rules.member_discount:.0%} off from your next order"
            )
        elif subtotal > 0:
            gap = cents(rules.membership.free_above - subtotal + 0.01)
            missing.append(
                Missing(
                    "free_membership",
                    gap,
                    f"{money(gap, currency)} more to become a member free "
                    f"(or join for {money(rules.membership.fee, currency)})",
                )
            )
    total = cents(subtotal + shipping)
    return Quote(priced, subtotal, cents(shipping), gift, total, is_member, becomes_member, applied, missing)
