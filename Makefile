# The two commands of the README: `make demo` and `make test`.
# A fresh machine has Python 3.11, pip and make; uv is bootstrapped into .uv/ from the
# registry, then installs exactly what uv.lock says into .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .uv/bin/uv
SHOP ?= data/demo
PORT ?= 3000
# the demo tunes the recommender's blend on two validation folds instead of config's four:
# faster, and NDCG@10 within noise of four folds on the demo shop (one fold was clearly
# worse; README, quick start)
DEMO_FOLDS ?= 2
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
# every dependency set: the service's, `train` (the CLI and training) and `team` (the
# tracking server), with the dev group (pyproject.toml)
RUN := $(UV) run --frozen --all-extras

.PHONY: install demo test lint format bench bento

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --compile-bytecode: every library's bytecode written once here, so no later command
# compiles MLflow, pandas or BentoML again (each `storewise` verb and each service worker is
# a new interpreter, and one with PYTHONDONTWRITEBYTECODE set, as containers often have,
# would compile them on every start: about half of a light verb's time)
install: $(UV)
	$(UV) sync --frozen --all-extras --compile-bytecode

## The main job on the embedded default shop: generate, check, build features, train and
## register the models, promote them, and serve on localhost.
demo: install
	$(RUN) storewise data generate --shop-dir $(SHOP)
	$(RUN) storewise data check --shop-dir $(SHOP)
	$(RUN) storewise features build --shop-dir $(SHOP)
	$(RUN) storewise train recommender --shop-dir $(SHOP) --validation-folds $(DEMO_FOLDS)
	-$(RUN) storewise promote --model recommender --shop-dir $(SHOP)
	$(RUN) storewise train pricing --shop-dir $(SHOP)
	-$(RUN) storewise promote --model pricing --shop-dir $(SHOP)
	@echo "demo: generated, checked, built features, trained, registered and promoted both models for $(SHOP)."
	$(RUN) storewise serve --shop-dir $(SHOP) --port $(PORT)

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) python -m tests.layers
	$(RUN) mypy storewise intake features inference training reports privacy cli serving tests benchmarks

format: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

test: lint
	$(RUN) pytest -n 2 --dist loadgroup

bench: install
	$(RUN) python -m benchmarks.bench_data
	$(RUN) python -m benchmarks.bench_features
	$(RUN) python -m benchmarks.bench_recommender
	$(RUN) python -m benchmarks.bench_pricing

## A bento of the service with the service's dependency set only: pyproject's dependencies,
## no extras, no dev group, exported from the lock (bentoml build ignores uv.lock), wheels
## only (`--only-binary :all:`, so installing the bento needs no compiler). bentoml build
## looks for uv on PATH (it would pip-install it into .venv, which has no pip).
bento: install
	{ echo "--only-binary :all:"; $(UV) export --frozen --no-dev --no-hashes --no-emit-project --no-header; } > requirements.lock.txt
	PATH=$(CURDIR)/.uv/bin:$$PATH BENTOML_HOME=$${BENTOML_HOME:-$(CURDIR)/.bentoml} $(RUN) bentoml build
