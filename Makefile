# pcam — two commands on a fresh machine: `make demo` and `make test`.
# Every target that needs the toolchain runs `setup` first; setup is idempotent.
SHELL := /bin/bash
ENV := source scripts/env.sh &&

.DEFAULT_GOAL := help
.PHONY: help setup build check demo test test-slow test-root test-slurm fuzz bench bench-full bench-compare lint fmt clean course-data notebooks notebooks-check lab journal-check mlflow mlflow-stop

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## Install Debian packages, .venv with pip torch, build target/release/pcam
	@scripts/setup.sh

build: setup ## Same as setup: the release binary, up to date

check: ## What CI runs (.ci/run, .github/workflows/ci.yml): test, lint, test-root, demo, notebooks-check, journal-check
	@.ci/run

demo: setup ## Run the main job on the embedded defaults (synthetic data)
	@scripts/demo.sh

test: setup ## Unit and integration tests (fast; slow and GPU tests are separate)
	@$(ENV) cargo test --release --locked

test-slow: setup ## Tests marked slow, GPU or root (#[ignore] with a reason), then make fuzz
	@$(ENV) cargo test --release --locked -- --ignored
	@scripts/fuzz.sh

# $(call as_root,WHAT,COMMAND): COMMAND as root; scripts/need-root.sh exits 3 for "skip
# visibly" (a normal user outside CI, exit 0 here) and 1 under CI (the target fails).
as_root = rc=0; scripts/need-root.sh "$(1)" || rc=$$?; \
	if [ $$rc = 0 ]; then $(ENV) $(2); elif [ $$rc != 3 ]; then exit $$rc; fi

test-root: setup ## Tests that need root: the full-disk case and the Slurm scripts on a real Slurm
	@$(call as_root,make test-root (full disk; Slurm),cargo test --release --locked --test corpus --test slurm -- --ignored)

fuzz: setup ## cargo-fuzz on the config resolver and the HDF5 reader, FUZZ_SECONDS per target (default 60)
	@scripts/fuzz.sh

test-slurm: setup ## The slurm/ scripts on a real one-node Slurm started here (root; installs slurm-wlm)
	@$(call as_root,make test-slurm,cargo test --release --locked --test slurm -- --ignored)

course-data: setup ## The SYNTHETIC demo copies, the course copy's clean index and slide split (configs/data/course_clean.yaml)
	@scripts/course-data.sh

notebooks: setup ## Install evcxr + Jupyter tools, execute every notebook in place, render journal tables
	@scripts/notebooks.sh run

lab: setup ## JupyterLab with the pcam-rust kernel on 127.0.0.1, pcam compiled for it first; prints the URL
	@scripts/notebooks.sh lab

notebooks-check: setup ## Execute notebooks into a temp folder; fail on errors or stale assets
	@scripts/notebooks.sh check

journal-check: setup ## Fail on stale journal tables, missing figures/notebooks, unanswered questions
	@target/release/pcam-course journal check

bench: setup ## Benchmarks: synthesis tiles/s; training img/s; audit tiles/s + RSS, and its scores on an independent generator; ROC-AUC/AP vs scikit-learn; throughput sweep
	@$(ENV) cargo bench --locked --bench synth
	@target/release/pcam -q data synth --out data/demo/pcam --variant pcam --seed 7 --force >/dev/null
	@for m in mlp cnn; do target/release/pcam -q bench train --config configs/model/$$m.yaml train.batch_size=32 train.threads=2 || exit 1; done
	@scripts/bench-audit.sh 20000
	@$(ENV) .venv/bin/python bench/metrics_vs_sklearn.py 10000000
	@target/release/pcam -q bench throughput
	@scripts/audit-independent.sh

bench-full: setup ## Opt-in: one training epoch on full-size copies (157k float32 course, 262k uint8 gzip); needs ~25 GB in /tmp
	@scripts/bench-full-scale.sh

bench-compare: setup ## pcam against the PyTorch course loop, same data and threads: batch-1 inference; training epochs
	@target/release/pcam -q data synth --out data/demo/pcam --variant pcam --seed 7 --force >/dev/null
	@rc=0; $(ENV) .venv/bin/python bench/throughput_vs_pytorch.py --out results/bench/pytorch-comparison.json || rc=1; \
	target/release/pcam -q data synth --out data/demo/course --variant course --seed 7 --force >/dev/null && \
	.venv/bin/python bench/train_vs_pytorch.py --out results/bench/train-vs-pytorch.json || rc=1; \
	if [ $$rc -ne 0 ]; then echo "bench-compare: a speed target was not met (see the tables above)"; fi; exit $$rc

mlflow: setup ## Start a local MLflow server (SQLite + artifacts under mlflow/) on 127.0.0.1:5000
	@target/release/pcam tracking server start --dir mlflow --port $${MLFLOW_PORT:-5000}

mlflow-stop: ## Stop the local MLflow server started by make mlflow (by its PID)
	@if [ -x target/release/pcam ]; then target/release/pcam tracking server stop --dir mlflow; else echo "no pcam binary"; fi

lint: setup ## rustfmt check, clippy and rustdoc (cargo doc) with warnings as errors
	@if command -v rustup >/dev/null; then rustup component add rustfmt clippy >/dev/null 2>&1 || true; fi
	@$(ENV) cargo fmt --all --check && cargo clippy --release --locked --all-targets -- -D warnings
	@$(ENV) RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps --locked --workspace --quiet

fmt: ## Format the code
	@cargo fmt --all

clean: ## Remove build outputs, demo data and demo runs (keeps .venv)
	rm -rf target data/demo runs/demo
