# Every target installs what it needs on first use (scripts/setup.sh: a cached Python
# environment with the pinned torch, gymnasium and tensorboard), then builds and runs.
.PHONY: run test bench lint build

WITH_ENV := scripts/with-env.sh
EPISODES ?= 10000

# The main job: see README.md.
run: build
	target/release/plastic rollout maze --policy random --episodes $(EPISODES)

build:
	$(WITH_ENV) cargo build --release --locked

test:
	$(WITH_ENV) cargo test --workspace --locked

bench: build
	target/release/plastic bench env maze --batch 1024

lint:
	$(WITH_ENV) cargo fmt --all -- --check
	$(WITH_ENV) cargo clippy --workspace --all-targets --locked -- -D warnings
