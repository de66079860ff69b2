# Every target installs what it needs on first use (scripts/setup.sh: a cached Python
# environment with the pinned torch, gymnasium and tensorboard), then builds and runs.
.PHONY: run run-bandit test check bench lint build tensorboard

WITH_ENV := scripts/with-env.sh
PLASTIC := target/release/plastic
# The main job: a plastic RNN learns to find the maze's hidden reward and go back to it.
CONFIG ?= configs/maze-small.toml
STEPS ?= 4e6
RUN ?= runs/quickstart-maze
# The second example: an LSTM learns which bandit arm pays.
BANDIT_RUN ?= runs/quickstart-bandit

# The main job (README.md): train a small maze agent on the CPU (a few minutes), then evaluate
# it next to the random policy and the shortest-path oracle. A run folder that already exists
# is continued, not overwritten.
run: build
	@if [ -f $(RUN)/config.toml ]; then $(PLASTIC) resume $(RUN); \
	else $(PLASTIC) train $(CONFIG) --out $(RUN) --set run.total_steps=$(STEPS); fi
	$(PLASTIC) eval $(RUN) --render $(RUN)/episode.gif
	@echo "TensorBoard: make tensorboard   (then open http://localhost:6006)"

run-bandit: build
	@if [ -f $(BANDIT_RUN)/config.toml ]; then $(PLASTIC) resume $(BANDIT_RUN); \
	else $(PLASTIC) train configs/bandit-dependent-easy.toml --out $(BANDIT_RUN); fi
	$(PLASTIC) eval $(BANDIT_RUN)

tensorboard:
	$(WITH_ENV) tensorboard --logdir runs

# The CLI, then the Python package (python/, installed into the same environment).
build:
	$(WITH_ENV) cargo build --release --locked
	$(WITH_ENV) scripts/python-package.sh

# The Rust tests, then the Python package's (python/tests/, against target/release/plastic).
# Optimised like the build it follows, so the libraries are compiled once, and the training tests
# run at full speed.
test: build
	$(WITH_ENV) cargo test --release --workspace --locked
	$(WITH_ENV) python -m pytest python/tests -q

# The quick check before a commit (a few minutes once built): formatting, clippy and the unit
# tests of every crate and the CLI (no command-line, training or Python tests: `make test`).
check:
	$(WITH_ENV) cargo fmt --all -- --check
	$(WITH_ENV) cargo clippy --workspace --all-targets --locked -- -D warnings
	$(WITH_ENV) cargo test --release --workspace --lib --bins --locked

# The core and training benchmarks run in Backpropamine's maze setting, with the hand-written
# backward pass and then with autograd, for the ratio.
bench: build
	target/release/plastic bench memory
	target/release/plastic bench traces
	target/release/plastic bench env maze --batch 1024
	target/release/plastic bench env gym:CartPole-v1 --batch 16
	target/release/plastic bench core --bptt fused
	target/release/plastic bench core --bptt autograd
	target/release/plastic bench core --bptt fused --set modulation=retroactive
	target/release/plastic bench core --bptt autograd --set modulation=retroactive
	target/release/plastic bench train configs/maze-backpropamine-simple.toml
	target/release/plastic bench train configs/maze-backpropamine-simple.toml --set a2c.bptt=autograd

# Everything CI checks besides the tests: rustfmt and clippy (with and without the Gymnasium
# bridge, the library without its `bench` feature, and the Python package's crate), the API docs with broken links denied, and ruff
# (pinned in scripts/setup.sh) over the Python package and the scripts.
lint:
	$(WITH_ENV) cargo fmt --all -- --check
	$(WITH_ENV) cargo clippy --workspace --all-targets --locked -- -D warnings
	$(WITH_ENV) cargo clippy -p plastic --no-default-features --all-targets --locked -- -D warnings
	$(WITH_ENV) cargo clippy -p plastic-agents --all-targets --locked -- -D warnings
	$(WITH_ENV) cargo fmt --manifest-path python/Cargo.toml -- --check
	$(WITH_ENV) cargo clippy --manifest-path python/Cargo.toml --target-dir target --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(WITH_ENV) cargo doc --workspace --no-deps --locked
	$(WITH_ENV) ruff check python scripts
	$(WITH_ENV) ruff format --check python scripts
