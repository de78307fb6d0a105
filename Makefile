# epilogue: learn how one video moves, then keep it going after its last frame.
# `make demo` does everything on the bundled clip; `make test` checks it all.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# GPU=1 installs CUDA TensorFlow and onnxruntime-gpu instead of the CPU builds.
EXTRAS := $(if $(GPU),gpu,train),dev
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
comma  := ,

VIDEO  ?= assets/big_buck_bunny_0_30.webm
NAME   ?= full
RUN    ?= runs/$(NAME)
# The bundled clip is 30 s: the origin story's stride of 100 frames would leave no validation windows.
ARGS   ?= $(if $(filter $(VIDEO),assets/big_buck_bunny_0_30.webm),--stride 6 --hop 1)

CLIP   := assets/big_buck_bunny_0_30.webm
# export and rollout act on RUN when given, else on the newest run directory.
LATEST  = $(or $(if $(filter command line environment,$(origin RUN)),$(RUN)),$(patsubst %/config.json,%,$(firstword $(shell ls -1t runs/*/config.json 2>/dev/null))),runs/$(NAME))
MODEL   = $(LATEST)/export/generator.onnx

.PHONY: install test test-quick lint train export rollout evaluate demo cluster bench quality binary clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-*
	@touch $@

lint: install
	$(BIN)/ruff check .

# The report page is checked in a real browser: Debian's chromium, installed here when missing (as root).
test: lint
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "warning: chromium could not be installed; the browser test of the report page will be skipped"
	$(BIN)/pytest

# Between edits: lint and every test but the heavy ones (the binary build, the worker clusters); CI runs `make test`.
test-quick: lint
	$(BIN)/pytest -m "not heavy"

train: install
	$(BIN)/epilogue-train $(VIDEO) --preset $(NAME) --run-dir $(RUN) $(ARGS)

export: install
	$(BIN)/epilogue-export $(LATEST)

rollout: install
	$(BIN)/epilogue-rollout $(MODEL) --from $(VIDEO) --out $(LATEST)/continuation.mp4

evaluate: install
	$(BIN)/epilogue-eval $(MODEL) $(VIDEO) --out $(LATEST)/eval

# The README's first command: train the demo preset on the bundled clip, export, roll out 600 steps.
demo: install
	$(BIN)/epilogue-train $(CLIP) --preset demo --run-dir runs/demo
	$(BIN)/epilogue-export runs/demo
	$(BIN)/epilogue-rollout runs/demo/export/generator.onnx --from $(CLIP) --out runs/demo/continuation.mp4
	$(BIN)/epilogue-rollout runs/demo/export/generator.onnx --from $(CLIP) --out runs/demo/comparison.mp4 \
		--with-source 5 --side-by-side
	$(BIN)/epilogue-eval runs/demo/export/generator.onnx $(CLIP) --out runs/demo/eval
	@echo
	@echo "demo done:"
	@echo "  continuation: runs/demo/continuation.mp4 (600 steps, 90 s, 1280x720)"
	@echo "  comparison:   runs/demo/comparison.mp4 (the clip's last 5 s, then real | continuation)"
	@echo "  evaluation:   runs/demo/eval/index.html (model vs persistence and the mean frame, drift, motion)"
	@echo "  training:     runs/demo (samples/, previews/, metrics.json; tensorboard --logdir runs/demo/logs)"

# Multi-worker training on this machine: WORKERS workers on loopback ports, one global batch of BATCH windows
# (a multiple of WORKERS). Ctrl-C stops them all at one step with a checkpoint; the same command resumes.
WORKERS ?= 2
BATCH   ?= $(WORKERS)
cluster: install
	$(BIN)/epilogue-train $(VIDEO) --preset $(NAME) --run-dir runs/$(NAME)-$(WORKERS)-workers \
		--local-workers $(WORKERS) --batch-size $(BATCH) $(ARGS)

# One file that runs without Python packages: the lean runner and onnxruntime (onnxruntime-gpu with GPU=1).
binary: install
	$(BIN)/pyinstaller --onefile --noconfirm --clean --log-level WARN --name epilogue-rollout \
		--distpath dist --workpath build/pyinstaller --specpath build --paths $(CURDIR) \
		--exclude-module tensorflow --exclude-module keras --exclude-module matplotlib \
		--collect-binaries onnxruntime --collect-data onnxruntime $(CURDIR)/bin/epilogue-rollout.py
	@echo "binary: dist/epilogue-rollout (try: dist/epilogue-rollout --help)"

bench: install
	$(BIN)/python -m bench.run

# Compare training settings on equal budgets (3 seeds, bundled clip and window scene); e.g.
# make quality QUALITY_ARGS="--config residual.toml --grid train.l1_weight=10,100"
quality: install
	$(BIN)/python -m bench.quality $(QUALITY_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
