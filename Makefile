# The two commands a user needs: `make demo` and `make test`. Each creates
# .venv on first use and installs everything (pinned in constraints.txt).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test proof install clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# Build requirements first: the package is installed without build
	# isolation so that its compiled ops build against the pinned torch.
	$(PY) -m pip install -q -c constraints.txt setuptools torch torchvision
	$(PY) -m pip install -q -c constraints.txt --no-build-isolation -e '.[test]'
	$(PY) -m pip check
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/flownet2 demo -o demo_out

test: $(STAMP)
	$(PY) -m pytest -q

# Full-size proofs (minutes): what `make test` checks in reduced form.
proof: $(STAMP)
	$(PY) -m evaluations.proof_stacks
	$(PY) -m flowapps.segmentation.proof -o proof_out/segmentation

clean:
	rm -rf demo_out proof_out build *.egg-info
