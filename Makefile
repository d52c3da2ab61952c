# Portico: `make run` starts everything locally; `make test` runs the whole suite.
.PHONY: run test test-unit test-integration test-e2e lint bench bootstrap portal-link

VENV := .venv/bin

run:
	@ops/bootstrap.sh
	@$(VENV)/portico run

test:
	@ops/bootstrap.sh --test
	@$(VENV)/python -m pytest

test-unit:
	@$(VENV)/python -m pytest tests/unit

test-integration:
	@$(VENV)/python -m pytest tests/integration

test-e2e:
	@$(VENV)/python -m pytest tests/e2e

lint:
	@$(VENV)/ruff check .

bench:
	@ops/bootstrap.sh --bench
	@$(VENV)/python -m bench $(BENCH)

bootstrap:
	@ops/bootstrap.sh --test

portal-link:
	@$(VENV)/portico portal-link

# N = 1, 2, 3 documents instances on one queue and one PostgreSQL database (docs/operations.md)
.PHONY: scale-demo
scale-demo:
	@ops/bootstrap.sh --test
	@$(VENV)/python -m bench.scale_documents $(SCALE)
