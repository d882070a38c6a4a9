"""What the storefront asks of the recommender, as functions on the logged model.

`Recommendations` wraps the hybrid model with what it needs to answer: the catalogue
(category, name, stock), the customers it may personalize for (pseudonymous ids, region,
segment, consent only), popularity by region and segment for cold start, and the
business rules. Every answer is an ordered list of items with a score and a short reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from inference.recommender.scoring import TIE_BREAK, HybridModel
from storewise import columns as c
from storewise.ids import normalize_customer_id
from storewise.settings import BusinessRules

Source = Literal["personalized", "segment", "region", "trending"]
# What happens to items a customer bought before: "exclude" them all (discovery),
# apply the business rules (one-time categories excluded), or "include" them (rebuying).
Purchased = Literal["exclude", "rules", "include"]
BLEND_FOR = {"exclude": "discovery", "rules": "business_rules", "include": "all_purchases"}
GROUP, GROUP_KIND, SCORE = "group", "group_kind", "score"


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    score: float
    reason: str


@dataclass(frozen=True)
class Answer:
    items: list[Recommendation]
    source: Source
    personalized: bool


@dataclass
class Context:
    recently_viewed: list[str] = field(default_factory=list)
    cart: list[str] = field(default_factory=list)
    include_categories: list[str] = field(default_factory=list)
    exclude_categories: list[str] = field(default_factory=list)
    # items this customer said "not interested" in (the service's `dismiss` feedback)
    dismissed: list[str] = field(default_factory=list)
    # at most this many items of one category in the answer (None: no limit, the default)
    max_per_category: int | None = None


class Recommendations:
    def __init__(
        self,
        model: HybridModel,
        catalog: pd.DataFrame,
        customers: pd.DataFrame,
        group_popularity: pd.DataFrame,
        rules: BusinessRules,
    ) -> None:
        self.model = model
        self.rules = rules
        self.catalog = catalog.set_index(c.ITEM_ID).reindex(model.item_ids)
        self.names = self.catalog[c.NAME].fillna("").to_numpy()
        self.categories = self.catalog[c.CATEGORY].fillna("unknown").to_numpy()
        stock = self.catalog[c.STOCK]
        self.in_stock = (
            (stock.isna() | (stock > 0)).to_numpy() if rules.in_stock_only else np.ones(model.n_items, bool)
        )
        self.in_stock.setflags(write=False)  # shared by requests without context: never modified
        self.one_time = np.isin(self.categories, list(rules.one_time_categories))
        self.boost = np.ones(model.n_items, np.float32)
        for item, factor in rules.boosted_items.items():
            if item in model.item_index.index:
                self.boost[model.item_index[item]] = factor
        self.customers = customers.set_index(c.CUSTOMER_ID)
        # per-request lookups as dicts: a pandas row lookup costs more than the scoring
        self.personalizable = set(
            self.customers.index[self.customers[c.CONSENT_PERSONALIZATION].fillna(False).astype(bool)]
        ) & set(model.user_index.index)
        self.members = (
            set(self.customers.index[self.customers[c.IS_MEMBER].fillna(False).astype(bool)])
            if c.IS_MEMBER in self.customers
            else set()
        )
        self.item_names = dict(zip(model.item_ids, self.names, strict=True))
        self.position = {str(item): index for index, item in enumerate(model.item_ids)}
        self.pinned = self.item_positions(list(rules.pinned_items))
        # a blended score above this has support from some component, not the tie-break alone
        self.support_floor = 1.01 * TIE_BREAK * float(self.boost.max())
        self.item_categories = dict(zip(model.item_ids, self.categories, strict=True))
        groups = {
            (kind, name): frame.set_index(c.ITEM_ID)[SCORE]
            .reindex(model.item_ids, fill_value=0)
            .to_numpy(np.float32)
            for (kind, name), frame in group_popularity.groupby([GROUP_KIND, GROUP])
        }
        # the non-personalized answers' scores, the same for every request of their group
        one = np.zeros(1, np.int64)
        trending = np.asarray(model.component_ranks("trending", one)[0])
        self.trending_scores = trending + 1e-3 * np.asarray(model.component_ranks("popularity", one)[0])
        self.group_scores = {
            key: model.rank_scores(scores[None, :])[0] + 0.5 * trending
            for key, scores in groups.items()
            if scores.sum() > 0
        }
        self.protocol = "business_rules" if "business_rules" in model.blends else next(iter(model.blends))

    # -- lookups ----------------------------------------------------------------------

    def item_positions(self, item_ids: list[str]) -> np.ndarray:
        """Positions of the known items among `item_ids`, in order; unknown ones are skipped."""
        return np.array([self.position[item] for item in item_ids if item in self.position], dtype=np.int64)

    def knows_item(self, item_id: str) -> bool:
        return item_id in self.position

    def customer(self, customer_id: str) -> pd.Series | None:
        customer_id = normalize_customer_id(customer_id)
        return self.customers.loc[customer_id] if customer_id in self.customers.index else None

    def can_personalize(self, customer_id: str) -> bool:
        return normalize_customer_id(customer_id) in self.personalizable

    def is_member(self, customer_id: str) -> bool:
        return normalize_customer_id(customer_id) in self.members

    # -- recommend --------------------------------------------------------------------

    def recommend(
        self,
        customer_id: str | None,
        k: int,
        context: Context | None = None,
        *,
        purchased: Purchased = "rules",
    ) -> Answer:
        context = context or Context()
        customer_id = normalize_customer_id(customer_id) if customer_id is not None else None
        if customer_id is not None and self.can_personalize(customer_id):
            user = int(self.model.user_index[customer_id])
            answers = self._personalized(np.array([user]), k, purchased, context)
            return Answer(answers[0], "personalized", True)
        allowed = self._allowed(context)
        scores, source = self._non_personalized(customer_id)
        return Answer(self._top(scores, allowed, k, None, source, context.max_per_category), source, False)

    def recommend_many(
        self,
        customer_ids: list[str],
        k: int,
        *,
        purchased: Purchased,
        batch: int = 256,
        context: Context | None = None,
    ) -> list[Answer]:
        """The same answers as `recommend` (without context unless given one: the same for
        every customer), scored in batches of customers."""
        context = context or Context()
        ids = [normalize_customer_id(value) for value in customer_ids]
        answers: list[Answer | None] = [None] * len(ids)
        personal = [i for i, value in enumerate(ids) if self.can_personalize(value)]
        for start in range(0, len(personal), batch):
            rows = personal[start : start + batch]
            users = self.model.user_index.loc[[ids[i] for i in rows]].to_numpy()
            for row, items in zip(rows, self._personalized(users, k, purchased, context), strict=True):
                answers[row] = Answer(items, "personalized", True)
        for i, value in enumerate(ids):
            if answers[i] is None:
                answers[i] = self.recommend(value, k, context, purchased=purchased)
        return [answer for answer in answers if answer is not None]

    def _personalized(
        self, users: np.ndarray, k: int, purchased: Purchased, context: Context
    ) -> list[list[Recommendation]]:
        protocol = BLEND_FOR[purchased] if BLEND_FOR[purchased] in self.model.blends else self.protocol
        if len(users) == 1 and not context.recently_viewed:
            answer = self._personalized_one(int(users[0]), k, purchased, context, protocol)
            if answer is not None:
                return [answer]
        bought = [self._bought(int(user)) for user in users]
        blocked = [self._blocked(items, purchased) for items in bought] if purchased != "include" else None
        scores = self.model.protocol_scores(users, protocol, blocked)
        if context.recently_viewed:
            viewed = self.item_positions(context.recently_viewed)
            if len(viewed):
                similar = self.model.similar_scores(viewed).clip(min=0)
                scores = scores + 0.5 * similar / max(float(similar.max()), 1e-9) * scores.max(
                    axis=1, keepdims=True
                )
        allowed = np.tile(self._allowed(context), (len(users), 1))
        for row, items in enumerate(blocked or []):
            allowed[row, items] = False
        scores = np.where(allowed, scores * self.boost, -np.inf)
        pinned = self.pinned.tolist()
        cap = context.max_per_category
        width = self.model.n_items if cap else min(k + len(pinned), self.model.n_items)
        results = []
        for row in range(len(users)):
            candidates = [int(p) for p in best(scores[row], width) if np.isfinite(scores[row, p])]
            ordered = list(dict.fromkeys([p for p in pinned if allowed[row, p]] + candidates))
            chosen = self._capped(ordered, k, cap)
            results.append(self._described(chosen, {p: float(scores[row, p]) for p in chosen}, bought[row]))
        return results

    def _personalized_one(
        self, user: int, k: int, purchased: Purchased, context: Context, protocol: str
    ) -> list[Recommendation] | None:
        """`_personalized` for one customer, scored on the items some component ranks (the
        service's path). None when fewer of them than needed are allowed and supported:
        the full scoring then decides, so the answer is the same either way."""
        bought = self._bought(user)
        blocked = self._blocked(bought, purchased) if purchased != "include" else bought[:0]
        columns, scores = self.model.protocol_candidates(
            user, protocol, blocked if purchased != "include" else None
        )
        allowed_items = self._allowed(context)
        allowed = allowed_items[columns] & ~np.isin(columns, blocked)
        masked = np.where(allowed, scores * self.boost[columns], -np.inf)
        pinned = [p for p in self.pinned.tolist() if allowed_items[p] and p not in set(blocked.tolist())]
        width = k + len(self.pinned)
        supported = int((masked > self.support_floor).sum())
        if supported < width:
            return None
        cap = context.max_per_category
        # with a cap, every supported item in order: the cap may skip many of the best
        top = best(masked, supported if cap else width)
        score = dict(zip(columns[top].tolist(), masked[top].tolist(), strict=True))
        chosen = self._capped(list(dict.fromkeys(pinned + columns[top].tolist())), k, cap)
        if len(chosen) < k:
            return None  # the cap left too few supported items: the full scoring decides
        shared = self.model.protocol_shared(protocol)
        for p in pinned:  # a pinned item outside the ranked ones scores the tie-break alone
            score.setdefault(p, float(shared[p] * self.boost[p]))
        return self._described(chosen, score, bought)

    def _capped(self, ordered: list[int], k: int, cap: int | None) -> list[int]:
        """The first k of `ordered` with at most `cap` items per category (pinned items,
        first in the order, are always kept and count towards their category's cap)."""
        if not cap:
            return ordered[:k]
        pinned = set(self.pinned.tolist())
        counts: dict[str, int] = {}
        chosen: list[int] = []
        for position in ordered:
            if len(chosen) == k:
                break
            category = self.categories[position]
            if position in pinned or counts.get(category, 0) < cap:
                chosen.append(position)
                counts[category] = counts.get(category, 0) + 1
        return chosen

    def _bought(self, user: int) -> np.ndarray:
        """The items the customer bought, returned in full or not (a model registered before
        `ever_bought` was kept: the items they kept)."""
        bought = self.model.histories.get("ever_bought", self.model.histories["counts"])
        return bought.indices[bought.indptr[user] : bought.indptr[user + 1]]

    def _blocked(self, bought: np.ndarray, purchased: Purchased) -> np.ndarray:
        """Of the items a customer bought, those the answer must leave out."""
        return bought if purchased == "exclude" else bought[self.one_time[bought]]

    def _described(
        self, chosen: list[int], score: dict[int, float], history: np.ndarray
    ) -> list[Recommendation]:
        pinned = set(self.pinned.tolist())
        reasons = self._reasons_for(history, chosen)
        return [
            Recommendation(
                str(self.model.item_ids[p]),
                round(score[p], 6),
                "featured by the shop" if p in pinned else reasons.get(p, "matches your taste"),
            )
            for p in chosen
        ]

    def _reasons_for(self, history: np.ndarray, chosen: list[int]) -> dict[int, str]:
        """For each chosen item: bought before, else the bought item it goes with most."""
        reasons: dict[int, str] = {}
        if not len(history) or not chosen:
            return reasons
        matrix = self.model.similarity.get("ease", self.model.similarity.get("bm25"))
        if matrix is not None:
            block = _block(matrix, history, np.asarray(chosen, np.int64))
            strongest = block.argmax(axis=0)
            for column, item in enumerate(chosen):
                if block[strongest[column], column] > 0:
                    reasons[item] = f"goes with {self.model.item_ids[history[strongest[column]]]} you bought"
        for item in set(history.tolist()) & set(chosen):
            reasons[item] = "you bought this before"
        return reasons

    def _allowed(self, context: Context) -> np.ndarray:
        """Items the answer may hold: in stock, in the asked categories, not in the cart.
        Without such context it is the shared in-stock mask, read-only."""
        if not (
            context.include_categories or context.exclude_categories or context.cart or context.dismissed
        ):
            return self.in_stock
        allowed = self.in_stock.copy()
        if context.include_categories:
            allowed &= np.isin(self.categories, context.include_categories)
        if context.exclude_categories:
            allowed &= ~np.isin(self.categories, context.exclude_categories)
        allowed[self.item_positions(context.cart)] = False
        allowed[self.item_positions(context.dismissed)] = False
        return allowed

    def _non_personalized(self, customer_id: str | None) -> tuple[np.ndarray, Source]:
        row = self.customer(customer_id) if customer_id is not None else None
        if row is not None:
            for kind, column in (("segment", "rfm_segment"), ("region", c.REGION)):
                key = (kind, str(row.get(column)))
                if key in self.group_scores:
                    return self.group_scores[key], kind  # type: ignore[return-value]
        return self.trending_scores, "trending"

    def _top(
        self,
        scores: np.ndarray,
        allowed: np.ndarray,
        k: int,
        reasons: dict[int, str] | None,
        source: Source,
        cap: int | None = None,
    ) -> list[Recommendation]:
        scores = np.where(allowed, scores * self.boost, -np.inf)
        pinned = [p for p in self.pinned.tolist() if allowed[p]]
        finite = int(np.isfinite(scores).sum())
        count = min(k, finite)
        order = np.argsort(-scores, kind="stable")[: finite if cap else count]
        ordered = [int(p) for p in dict.fromkeys([*pinned, *order.tolist()])]
        order = np.array(self._capped(ordered, count, cap), dtype=np.int64)
        default = {
            "personalized": "matches your taste",
            "segment": "popular with customers like you",
            "region": "popular in your region",
            "trending": "trending now",
        }[source]
        result = []
        for position in order:
            reason = (
                "featured by the shop" if position in pinned else (reasons or {}).get(int(position), default)
            )
            if self.boost[position] > 1 and position not in pinned:
                reason = f"{reason} (featured)"
            result.append(
                Recommendation(str(self.model.item_ids[position]), round(float(scores[position]), 6), reason)
            )
        return result

    # -- items ------------------------------------------------------------------------

    def similar(self, item_id: str, k: int) -> list[Recommendation]:
        position = self.position[item_id]
        scores = self.model.similar_scores(np.array([position]))
        allowed = self.in_stock.copy()
        allowed[position] = False
        return self._items(scores, allowed, k, f"similar to {item_id}")

    def because_you_viewed(self, item_ids: list[str], k: int) -> list[Recommendation]:
        positions = self.item_positions(item_ids)
        if not len(positions):
            return []
        recency = np.linspace(0.5, 1.0, len(positions))  # the last viewed counts most
        scores = self.model.similar_scores(positions, recency)
        allowed = self.in_stock.copy()
        allowed[positions] = False
        anchor = item_ids[-1]
        return self._items(scores, allowed, k, f"because you viewed {anchor}")

    def complementary(self, cart: list[str], k: int) -> list[Recommendation]:
        positions = self.item_positions(cart)
        if not len(positions):
            return []
        scores = self.model.complement_scores(positions)
        allowed = self.in_stock.copy()
        allowed[positions] = False
        matrix = self.model.similarity.get("bm25", self.model.similarity.get("ease"))
        reasons = {}
        if matrix is not None:
            rows = matrix[positions].toarray()
            for item in np.flatnonzero(rows.max(axis=0) > 0):
                reasons[int(item)] = (
                    f"often bought with {self.model.item_ids[positions[rows[:, item].argmax()]]}"
                )
        return self._items(scores, allowed, k, "goes with your cart", reasons)

    def _items(
        self,
        scores: np.ndarray,
        allowed: np.ndarray,
        k: int,
        reason: str,
        reasons: dict[int, str] | None = None,
    ) -> list[Recommendation]:
        scores = np.where(allowed & np.isfinite(scores), scores, -np.inf)
        order = np.argsort(-scores, kind="stable")[: min(k, int(np.isfinite(scores).sum()))]
        return [
            Recommendation(
                str(self.model.item_ids[p]), round(float(scores[p]), 6), (reasons or {}).get(int(p), reason)
            )
            for p in order
        ]

    def new_item_scores(self, tags: list[str], category: str, price_band: str) -> np.ndarray:
        """How much each known customer would like an item not yet in the model, from its
        features alone (LightFM's feature embeddings)."""
        names = [f"category={category}", f"price_band={price_band}", *[f"tag={tag}" for tag in tags]]
        vector, bias = self.model.feature_representation(names)
        return self.model.user_embedding @ vector + bias

    # -- audiences --------------------------------------------------------------------

    def audience(
        self, *, item_id: str | None = None, category: str | None = None, size: int = 100
    ) -> tuple[pd.DataFrame, int]:
        """Customers most likely to want the item (or the category's items), among those
        who agreed to marketing; also how many were left out for lack of consent."""
        if item_id is not None:
            targets = np.array([self.position[item_id]])
        else:
            targets = np.flatnonzero(self.categories == category)
        affinity = (
            self.model.user_embedding @ self.model.item_embedding[targets].T + self.model.item_bias[targets]
        )
        score = affinity.max(axis=1)
        table = pd.DataFrame({c.CUSTOMER_ID: self.model.user_ids, SCORE: score})
        known = self.customers.reindex(table[c.CUSTOMER_ID])
        consent = known[c.CONSENT_MARKETING].fillna(False).astype(bool).to_numpy()
        table["rfm_segment"] = known["rfm_segment"].fillna("unknown").to_numpy()
        excluded = int((~consent).sum())
        table = table[consent].sort_values(SCORE, ascending=False, kind="stable").head(size)
        table[SCORE] = table[SCORE].round(4)
        return table.reset_index(drop=True), excluded


def best(scores: np.ndarray, width: int) -> np.ndarray:
    """Positions of the `width` highest scores, best first; equal scores in position order,
    so every scoring path (one customer, a batch) breaks ties the same way."""
    width = min(width, len(scores))
    part = np.argpartition(-scores, width - 1)[:width]
    tied = np.flatnonzero(scores >= scores[part].min())  # the cut may fall inside a tie
    return tied[np.lexsort((tied, -scores[tied]))][:width]


def _block(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """matrix[rows][:, columns] as a dense array, row by row: for a customer's few bought
    items and k chosen ones, scipy's fancy indexing costs more than the answer."""
    block = np.zeros((len(rows), len(columns)), np.float32)
    order = np.argsort(columns, kind="stable")
    ordered = columns[order]
    for i, row in enumerate(rows):
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        stored, values = matrix.indices[start:stop], matrix.data[start:stop]
        position = np.minimum(np.searchsorted(ordered, stored), len(ordered) - 1)
        hit = ordered[position] == stored
        block[i, order[position[hit]]] = values[hit]
    return block
