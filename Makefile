# The two commands: `make demo` runs the demo's main job, `make test` the whole test suite.
# Both create (or update) .venv in the repo root first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall whenever the package's requirements change.
STAMP := $(VENV)/.installed

export DAGSTER_HOME := $(CURDIR)

.PHONY: demo test install ui bench clean-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml constraints/test.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,embeddings,quality]" -c constraints/test.txt
	touch $(STAMP)

install: $(STAMP)

# The main job: the sample files, then the pipeline from the demo's SQLite "external
# database" to a new timestamped table in it (each run adds one; the exporter keeps 10).
demo: install
	$(BIN)/python projects/demo/make_shop_db.py
	$(BIN)/python projects/demo/make_shapes.py
	$(BIN)/dagster job execute -f projects/demo/definitions.py -d projects/demo -j main
	@echo
	$(BIN)/dataplat --workspace . --project demo exporter show scored_orders_out
	@echo
	$(BIN)/dataplat --workspace . --project demo dataset list
	@echo
	$(BIN)/dataplat --workspace . --project demo check list
	@echo
	$(BIN)/dataplat --workspace . --project demo image-folder list
	@echo
	$(BIN)/python projects/demo/embed_shapes.py
	@mkdir -p projects/demo/explorer
	$(BIN)/dataplat --workspace . --project demo embeddings explore sales --output projects/demo/explorer/sales.html
	@echo
	@echo "Look at it: DAGSTER_HOME=$(CURDIR) $(BIN)/dagster dev -w workspace.yaml  (then open http://127.0.0.1:3000),"
	@echo "            $(BIN)/dataplat dataset show sales, and the HTML reports under projects/demo/storage/datasets/."
	@echo "Explorer pages (open in a browser, offline): $$(ls projects/demo/explorer/*.html | tr '\n' ' ')"

# The connector tests start real servers; MariaDB and OpenSSH are apt-installed where missing.
test: install
	bash dataplat_dagster_tests/servers/install.sh
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

ui: install
	$(BIN)/dagster dev -w workspace.yaml

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/profile.py
	$(BIN)/python bench/profile.py --wide
	$(BIN)/python bench/definitions_load.py
	$(BIN)/python bench/datasources.py
	$(BIN)/python bench/exporters.py
	$(BIN)/python bench/image_folders.py
	$(BIN)/python bench/embeddings.py
	$(BIN)/python bench/checks.py
	$(BIN)/python bench/performance.py
