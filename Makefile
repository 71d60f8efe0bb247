# The two commands a user needs: `make demo` and `make test`. Each creates
# .venv on first use and installs everything (pinned in constraints.txt).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test proof bench install clean

# The compiled ops (flownet2_core._C) rebuild when setup.py or csrc/ change:
# an editable install alone would not notice.
$(STAMP): pyproject.toml constraints.txt setup.py $(shell find csrc -type f)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# Build requirements first: the package is installed without build
	# isolation so that its compiled ops build against the pinned torch
	# (CUDA kernels too when a CUDA toolkit is found, or FORCE_CUDA=1).
	$(PY) -m pip install -q -c constraints.txt setuptools torch torchvision
	$(PY) -m pip install -q -c constraints.txt --no-build-isolation -e '.[test]'
	$(PY) -m pip check
	$(PY) -m flownet2_core.ops
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/flownet2 demo -o demo_out

# FLOWNET2_REQUIRE_COMPILED=1: a failed build or load of the compiled ops is
# an error, never a silent fallback to the pure-PyTorch twins.
test: $(STAMP)
	FLOWNET2_REQUIRE_COMPILED=1 $(PY) -m pytest -q

# Every benchmark and proof entry script lives in evaluations/ (bench_*.py, proof_*.py).
bench: $(STAMP)
	$(PY) -m evaluations.bench_ops --threads 2
	$(PY) -m evaluations.bench_infer --threads 2 --rounds 5 --accuracy
	$(PY) -m evaluations.bench_stacks --methods dis tvl1 flownet2-s
	$(PY) -m evaluations.bench_train --width 0.375 --batch-size 8 --size 384x320 --crop 320x256 --threads 2
	@if $(PY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
	  $(PY) -m evaluations.bench_gpu; \
	  $(PY) -m evaluations.bench_stacks --methods flownet2 --device cuda; \
	else echo "bench_gpu, bench_stacks on cuda: no CUDA device here (GPU rows not measured)"; fi

# Full-size proofs (minutes): what `make test` checks in reduced form.
proof: $(STAMP)
	$(PY) -m evaluations.proof_stacks
	$(PY) -m evaluations.proof_segmentation -o proof_out/segmentation
	$(PY) -m evaluations.proof_action -o proof_out/action
	# The full FlowNet2 recipe (9 stages: C, CS, CSS, ft-sd, SD, fusion) at a larger scale
	# than the tests' one-iteration run: about 15 minutes of training on 2 cores.
	$(PY) -m evaluations.train_synth -o proof_out/train --recipe flownet2 --budget 900 --width 0.375 \
	    --size 256x192 --crop 192x128 --val-size 256x192 --val-batches 2 --val-every 200 --pool 128 --require-progress
	# Every reader fuzzed longer than in `make test` (40 examples each there).
	$(PY) -m evaluations.fuzz_readers --examples 2000

clean:
	rm -rf demo_out proof_out build *.egg-info
