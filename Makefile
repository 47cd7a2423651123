# inkdigits: two-command setup. Every target creates .venv and installs what it
# needs, pinned by constraints.txt, so a fresh machine gets the tested versions.
#
#   make demo    read MNIST digits and the example photos with the shipped model (no TensorFlow)
#   make test    install everything (Python packages, Debian's chromium) and run every test
#   make serve   the drawing pad and REST API on http://127.0.0.1:8000/
#   make train   retrain the shipped default model (inkdigits-cnn, same recipe and seed)
#   make train-checks retrain the shipped `checks` model and its line model (also tuned on check amounts)
#   make train-whole  retrain the shipped whole-digit check (whole-cnn) used to split touching digits
#   make train-line   retrain the shipped line model (reads each line of a number as a whole)
#   make bench   run the benchmarks under bench/ (results go to docs/BENCHMARKS.md)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := constraints.txt
DEPS := pyproject.toml $(CONSTRAINTS)

# Use a local copy of MNIST when one sits beside the checkout and nothing else is
# set (the workplace layout); otherwise the data is looked up and downloaded
# as described in the README.
ifeq ($(INKDIGITS_DATA_DIR),)
  ifneq ($(wildcard ../shared/data/mnist/SHA256SUMS),)
    export INKDIGITS_DATA_DIR := $(abspath ../shared/data/mnist)
  endif
endif

.PHONY: demo test serve train train-checks train-whole train-line bench lint clean

WHOLE_OUT := runs/whole-cnn-$(shell date +%Y%m%d-%H%M%S)
WHOLE_DIR := src/inkdigits/weights/whole

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: $(BIN)/python $(DEPS)
	$(PIP) install -q -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.all: $(BIN)/python $(DEPS)
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[train,serve,dev]'
	touch $@ $(VENV)/.core

# The browser tests drive Debian's Chromium (never `playwright install`).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

demo: $(VENV)/.core
	$(BIN)/inkdigits demo --out out/demo --examples examples

serve: $(VENV)/.all
	$(BIN)/inkdigits serve

test: $(VENV)/.all $(CHROMIUM)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest

# Retrain the shipped default model with its recipe and seeds, then ship it
# (about 10 hours on two cores; see the README). Six inkdigits-cnn runs are the
# teachers; one student learns their averaged probabilities (distillation);
# it is then fine-tuned on MNIST training digits rendered as photos and cut
# out by the reading pipeline. Every run lives in $(TRAIN_DIR) and is resumed
# if it was interrupted: run `make train` again. `rm -rf $(TRAIN_DIR)` starts over.
TRAIN_DIR := runs/train
TEACHERS := stroke-s0 plain-s0 plain-s1 elastic-s0 elastic-s1 elastic-s2
TEACHER_FLAGS_stroke-s0 := --seed 0
TEACHER_FLAGS_plain-s0 := --stroke 0 --epochs 40 --seed 0
TEACHER_FLAGS_plain-s1 := --stroke 0 --epochs 40 --seed 1
TEACHER_FLAGS_elastic-s0 := --elastic 0.5 --seed 0
TEACHER_FLAGS_elastic-s1 := --elastic 0.5 --epochs 40 --seed 1
TEACHER_FLAGS_elastic-s2 := --elastic 0.5 --seed 2
TEACHER_MODELS := $(TEACHERS:%=$(TRAIN_DIR)/teacher-%/model.onnx)
STUDENT_FLAGS := --teachers $(TEACHER_MODELS) --distill-views 16 --elastic 0.5 --seed 0
RENDERED := $(TRAIN_DIR)/rendered-s1.npz
FINAL_FLAGS := --init-from $(TRAIN_DIR)/student/best.keras --extra-digits $(RENDERED) \
	--extra-repeat 2 --epochs 6 --lr 5e-4 --elastic 0.5 --seed 0
# the `checks` model: the shipped default model fine-tuned once more on 30,000
# new renders (once each) and the ORAND-CAR-A digits outside its hashed
# held-out 30% (inkdigits crops, six times each); ORAND_DIR is where the set is
ORAND_DIR ?= ../shared/data/orand-car-a-dev
ORAND_CROPS := $(TRAIN_DIR)/orand-crops.npz
RENDERED_CHECKS := $(TRAIN_DIR)/rendered-s2.npz
DEFAULT_MODEL := src/inkdigits/weights/model.onnx
CHECKS_FLAGS := --init-from $(DEFAULT_MODEL) \
	--extra-digits $(RENDERED_CHECKS) $(ORAND_CROPS) --extra-repeat 1 6 \
	--epochs 6 --lr 5e-4 --elastic 0.5 --seed 0
CHECKS_DIR := src/inkdigits/weights/checks
# a run folder with a config.json is continued, else started with these flags
train_run = $(BIN)/inkdigits train $(if $(wildcard $(1)/config.json),--resume,--model inkdigits-cnn $(2)) --out $(1)

train: $(TRAIN_DIR)/final/model.onnx
	rm -f src/inkdigits/weights/model-int8.onnx
	cp $(TRAIN_DIR)/final/model.onnx $(TRAIN_DIR)/final/card.json src/inkdigits/weights/
	if [ -f $(TRAIN_DIR)/final/model-int8.onnx ]; then cp $(TRAIN_DIR)/final/model-int8.onnx src/inkdigits/weights/; fi
	@echo "shipped $(TRAIN_DIR)/final/model.onnx -> src/inkdigits/weights/"

$(TRAIN_DIR)/teacher-%/model.onnx: | $(VENV)/.all
	$(call train_run,$(@D),$(TEACHER_FLAGS_$*))

$(TRAIN_DIR)/student/model.onnx: $(TEACHER_MODELS) | $(VENV)/.all
	$(call train_run,$(@D),$(STUDENT_FLAGS))

# MNIST training digits rendered as photos and cut out by the Reader: seed 1
# for the default model's last step, seed 2 for the `checks` model's
RENDER_COUNT_1 := 20000
RENDER_COUNT_2 := 30000
$(TRAIN_DIR)/rendered-s%.npz: | $(VENV)/.all
	$(BIN)/inkdigits render-digits --count $(RENDER_COUNT_$*) --seed $* --out $@

$(TRAIN_DIR)/final/model.onnx: $(TRAIN_DIR)/student/model.onnx $(RENDERED) | $(VENV)/.all
	$(call train_run,$(@D),$(FINAL_FLAGS))

train-checks: $(TRAIN_DIR)/checks/model.onnx $(TRAIN_DIR)/line-checks/model.onnx
	mkdir -p $(CHECKS_DIR)/line
	cp $(TRAIN_DIR)/checks/model-int8.onnx $(TRAIN_DIR)/checks/card.json $(CHECKS_DIR)/
	cp $(TRAIN_DIR)/line-checks/model.onnx $(TRAIN_DIR)/line-checks/card.json $(CHECKS_DIR)/line/
	@echo "shipped $(TRAIN_DIR)/checks/model-int8.onnx and its line model -> $(CHECKS_DIR)/"

$(ORAND_CROPS): | $(VENV)/.all
	$(BIN)/inkdigits crops $(ORAND_DIR) --out $@

$(TRAIN_DIR)/checks/model.onnx: $(DEFAULT_MODEL) $(RENDERED_CHECKS) $(ORAND_CROPS) | $(VENV)/.all
	$(call train_run,$(@D),$(CHECKS_FLAGS))

# Retrain the whole-digit check (cut-outs of touching MNIST training digits), then ship it.
train-whole: $(VENV)/.all
	$(BIN)/inkdigits train --model whole-cnn --seed 0 --out $(WHOLE_OUT)
	mkdir -p $(WHOLE_DIR)
	rm -f $(WHOLE_DIR)/model-int8.onnx
	cp $(WHOLE_OUT)/model.onnx $(WHOLE_OUT)/card.json $(WHOLE_DIR)/
	if [ -f $(WHOLE_OUT)/model-int8.onnx ]; then cp $(WHOLE_OUT)/model-int8.onnx $(WHOLE_DIR)/; fi
	@echo "shipped $(WHOLE_OUT)/model.onnx -> $(WHOLE_DIR)/"

# Retrain the line models (a line-cnn in about 100 minutes on two cores: 40 to
# render 100,000 numbers of MNIST training digits in two seeded halves and find
# them as the Reader does, 60 to train), then ship them joined (below).
LINE_DATA := $(TRAIN_DIR)/lines-s1.npz $(TRAIN_DIR)/lines-s2.npz
LINE_DIR := src/inkdigits/weights/line

$(TRAIN_DIR)/lines-s%.npz: | $(VENV)/.all
	$(BIN)/inkdigits line-data --count 50000 --seed $* --out $@

$(TRAIN_DIR)/line/model.onnx: $(LINE_DATA) | $(VENV)/.all
	$(BIN)/inkdigits train-line --data $(LINE_DATA) --epochs 10 --seed 0 --out $(@D)

# the `checks` line model: the line model fine-tuned for two epochs with the
# ORAND-CAR-A lines outside its hashed held-out 30% added, thirty times over,
# every line restretched, slanted and shifted anew each time (--augment)
ORAND_LINES := $(TRAIN_DIR)/orand-lines.npz

$(ORAND_LINES): | $(VENV)/.all
	$(BIN)/inkdigits line-data --boxes $(ORAND_DIR) --out $@

# plus ten new amounts per such image in its own hand (its digit strips redrawn
# in a new order between its own marks: --mix), twice over; the Reader then
# trusts this line model's count more (count_penalty -3, chosen cross-fitted
# on the two halves of those images, see docs/BENCHMARKS.md, session 18)
ORAND_MIX := $(TRAIN_DIR)/orand-mix.npz

$(ORAND_MIX): | $(VENV)/.all
	$(BIN)/inkdigits line-data --boxes $(ORAND_DIR) --mix 10 --seed 0 --out $@

$(TRAIN_DIR)/line-checks/model.onnx: $(TRAIN_DIR)/line/model.onnx $(ORAND_LINES) $(ORAND_MIX) | $(VENV)/.all
	$(BIN)/inkdigits train-line --data $(LINE_DATA) $(ORAND_LINES) $(ORAND_MIX) --repeat 1 1 30 2 \
		--augment --init-from $(TRAIN_DIR)/line/best.keras --epochs 2 --lr 5e-4 --seed 0 \
		--fusion count_penalty=-3 --out $(@D)

# the shipped default line model joins that line-cnn with a line-rnn (about
# 110 minutes more: 26 to render 50,000 more numbers in two seeded halves, then
# the line-cnn fine-tuned on them for 3 epochs, a bidirectional LSTM put on top
# for 2 epochs, and 7 more epochs of the whole; session 25's run started the
# fine-tune from the shipped line-cnn's ONNX file, the same weights as
# line/best.keras) into one graph that multiplies their probabilities step by
# step (`inkdigits line-ensemble`; docs/BENCHMARKS.md, session 25)
LINE_MORE := $(TRAIN_DIR)/lines-s3.npz $(TRAIN_DIR)/lines-s4.npz

$(LINE_MORE): $(TRAIN_DIR)/lines-s%.npz: | $(VENV)/.all
	$(BIN)/inkdigits line-data --count 25000 --seed $* --out $@

$(TRAIN_DIR)/line-ft/model.onnx: $(TRAIN_DIR)/line/model.onnx $(LINE_MORE) | $(VENV)/.all
	$(BIN)/inkdigits train-line --data $(LINE_MORE) --init-from $(TRAIN_DIR)/line/best.keras \
		--epochs 3 --lr 2e-4 --seed 0 --out $(@D)

$(TRAIN_DIR)/line-rnn-start/model.onnx: $(TRAIN_DIR)/line-ft/model.onnx | $(VENV)/.all
	$(BIN)/inkdigits train-line --data $(LINE_MORE) --architecture line-rnn \
		--init-from $(TRAIN_DIR)/line-ft/best.keras --epochs 2 --lr 1e-3 --seed 0 --out $(@D)

$(TRAIN_DIR)/line-rnn/model.onnx: $(TRAIN_DIR)/line-rnn-start/model.onnx | $(VENV)/.all
	$(BIN)/inkdigits train-line --data $(LINE_MORE) --architecture line-rnn \
		--init-from $(TRAIN_DIR)/line-rnn-start/best.keras --epochs 7 --lr 6e-4 --seed 0 --out $(@D)

$(TRAIN_DIR)/line-joint/model.onnx: $(TRAIN_DIR)/line/model.onnx $(TRAIN_DIR)/line-rnn/model.onnx | $(VENV)/.all
	$(BIN)/inkdigits line-ensemble $^ --out $(@D)

train-line: $(TRAIN_DIR)/line-joint/model.onnx
	mkdir -p $(LINE_DIR)
	cp $(TRAIN_DIR)/line-joint/model.onnx $(TRAIN_DIR)/line-joint/card.json $(LINE_DIR)/
	@echo "shipped $(TRAIN_DIR)/line-joint/model.onnx -> $(LINE_DIR)/"

# The figures in docs/BENCHMARKS.md (about 40 minutes on 2 cores; orand.py needs
# ../shared/data/orand-car-a-dev or --dir).
bench: $(VENV)/.all $(CHROMIUM)
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	$(BIN)/python bench/onnx_speed.py
	$(BIN)/python bench/onnx_speed.py --model src/inkdigits/weights/model.onnx
	$(BIN)/python bench/read_latency.py --repeats 200
	$(BIN)/python bench/time_to_accuracy.py --target 0.99 --model fast-cnn --seeds 0 1 2 --checks-per-epoch 8 --first-check 1
	$(BIN)/python bench/time_to_accuracy.py --target 0.995 --model quick-cnn --first-check 3 --checks-per-epoch 2 --seeds 0 1 2
	$(BIN)/python bench/seed_cnn.py --seeds 0
	$(BIN)/python bench/realworld.py --digits 2000 --numbers 500
	$(BIN)/python bench/orand.py
	$(BIN)/python bench/serve_load.py --seconds 60 --rounds 3
	$(BIN)/python bench/serve_load.py --seconds 0 --soak 300
	$(BIN)/python bench/page_latency.py --draws 30

lint: $(VENV)/.all
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

clean:
	rm -rf $(VENV) out .pytest_cache
