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

# The film's last frame (seconds, 25.5s, or a frame): frames after it (credits, a fade) are not trained on, and the
# rollout starts from it. Empty: the video's own last frame.
END    ?=
FINAL  ?= runs/$(NAME)-final
CLIP   := assets/big_buck_bunny_0_30.webm
# The demo continues the bundled clip's slow pan over a meadow: it ends there, before the clip cuts to a stream,
# a bird and its title card.
DEMO_END := 11.5s
GIVEN   = $(if $(filter command line environment,$(origin RUN)),$(RUN))
# export and evaluate act on RUN when given, else on the newest run directory; rollout on RUN when given, else on
# the continuation model (FINAL, from `make final`) once it is exported, else on the newest run directory.
LATEST  = $(or $(GIVEN),$(patsubst %/config.json,%,$(firstword $(shell ls -1t runs/*/config.json 2>/dev/null))),runs/$(NAME))
MODEL   = $(LATEST)/export/generator.onnx
CONTINUATION = $(or $(GIVEN),$(if $(wildcard $(FINAL)/export/generator.onnx),$(FINAL)),$(LATEST))

.PHONY: install test test-quick lint train final export rollout evaluate demo cluster bench quality ending binary clean

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

# The held-out run that chooses settings (and is scored on frames it never saw): `make train`, `make evaluate`.
train: install
	$(BIN)/epilogue-train $(VIDEO) --preset $(NAME) --run-dir $(RUN) $(ARGS) $(if $(END),--end $(END))

# The continuation model: the same settings, trained on every frame up to the film's end.
final: install
	$(BIN)/epilogue-train $(VIDEO) --preset $(NAME) --run-dir $(FINAL) --final $(ARGS) $(if $(END),--end $(END))

export: install
	$(BIN)/epilogue-export $(LATEST)

rollout: install
	$(BIN)/epilogue-rollout $(CONTINUATION)/export/generator.onnx --from $(VIDEO) --out $(CONTINUATION)/continuation.mp4 \
		$(if $(END),--end $(END))

evaluate: install
	$(BIN)/epilogue-eval $(MODEL) $(VIDEO) --out $(LATEST)/eval

# The README's first command: train the demo preset on the bundled clip up to its end (--final: the model that makes
# a continuation), export, roll out 600 steps from that end.
demo: install
	$(BIN)/epilogue-train $(CLIP) --preset demo --final --end $(DEMO_END) --run-dir runs/demo
	$(BIN)/epilogue-export runs/demo
	$(BIN)/epilogue-rollout runs/demo/export/generator.onnx --from $(CLIP) --out runs/demo/continuation.mp4
	$(BIN)/epilogue-rollout runs/demo/export/generator.onnx --from $(CLIP) --out runs/demo/comparison.mp4 \
		--with-source 5 --side-by-side
	$(BIN)/epilogue-eval runs/demo/export/generator.onnx $(CLIP) --out runs/demo/eval
	@echo
	@echo "demo done:"
	@echo "  continuation: runs/demo/continuation.mp4 (600 steps from the meadow at $(DEMO_END), 90 s, 1280x720)"
	@echo "  comparison:   runs/demo/comparison.mp4 (the 5 s before it, then what the clip shows next | continuation)"
	@echo "  evaluation:   runs/demo/eval/index.html (how long it stays a film by the clip's own measures, and why)"
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

# A model that has seen the film's end against one that held it out: the two-shot scene, 3 seeds (README, Quality).
ending: install
	$(BIN)/python -m bench.ending

clean:
	rm -rf $(VENV) build dist *.egg-info
