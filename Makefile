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
NAME   ?= pix2pix
RUN    ?= runs/$(NAME)
# The bundled clip is 30 s: the origin story's stride of 100 frames would leave no validation pairs.
ARGS   ?= $(if $(filter $(VIDEO),assets/big_buck_bunny_0_30.webm),--stride 6 --hop 1)

.PHONY: install test lint train bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-*
	@touch $@

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest

train: install
	$(BIN)/epilogue-train $(VIDEO) --preset $(NAME) --run-dir $(RUN) $(ARGS)

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build dist *.egg-info
