# The two commands of the README: `make demo` and `make test`. Each creates .venv when it is
# missing and installs the pinned versions into it first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.modelport-installed

.PHONY: install demo test bench bench-runtimes bench-pipeline bench-zoo bench-transformers bench-quantize bench-onnx-tf bench-onnx-torch bench-sources mxnet-fixtures bench-edge bench-tfjs bench-serve container container-base proto clean

TFJS_RUNNER := modelport/edge/tfjs_runner
TRANSFORMERSJS_RUNNER := modelport/edge/transformersjs_runner
ORTWEB_RUNNER := modelport/edge/ortweb_runner

SERVE_CLIENTS := tests/serve/clients

$(STAMP): pyproject.toml constraints.txt $(TFJS_RUNNER)/package-lock.json $(TRANSFORMERSJS_RUNNER)/package-lock.json $(ORTWEB_RUNNER)/package-lock.json $(SERVE_CLIENTS)/requirements.txt $(SERVE_CLIENTS)/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	# MediaPipe Tasks, only to prove in the tests that app tooling reads the TFLite metadata modelport
	# writes; kept out of the product's environment (its wheel pulls opencv-contrib, which would
	# replace OpenCV 4, the Caffe reference), so its own code goes to a folder of its own.
	$(PY) -m pip install --quiet --no-deps --target $(VENV)/peers/mediapipe mediapipe==1.2.2
	# timm for the zoo tests and benchmark, with the torchvision it imports, in a folder of their own and
	# without their dependencies: torchvision's PyPI wheels are CUDA builds whose C++ operators cannot
	# load beside CPU torch, and transformers would pick torchvision up from site-packages
	# (tests/zoo_timm.py explains how timm is imported from there).
	$(PY) -m pip install --quiet --no-deps --target $(VENV)/peers/timm timm==1.0.31 torchvision==0.28.0
	# Real TF.js (Node, WebAssembly backend) for the edge tfjs checks, at the versions package-lock.json pins.
	npm ci --prefix $(TFJS_RUNNER) --no-audit --no-fund --ignore-scripts --loglevel=error
	# ONNX Runtime Web (its WebAssembly build) for the edge web checks, and the files its bundles' page loads.
	npm ci --prefix $(ORTWEB_RUNNER) --no-audit --no-fund --ignore-scripts --loglevel=error
	# transformers.js (onnxruntime-node underneath) for the decoder folders' generation check. Without
	# install scripts: onnxruntime-node's would fetch CUDA libraries; its CPU binaries are in the package.
	npm ci --prefix $(TRANSFORMERSJS_RUNNER) --no-audit --no-fund --ignore-scripts --loglevel=error
	# The serving tests' clients (tritonclient, kserve, requests) in a venv of their own: they pin a
	# protobuf major older than the product's, and a real user's client process is separate anyway.
	test -x $(VENV)/peers/clients/bin/python || $(PYTHON) -m venv $(VENV)/peers/clients
	$(VENV)/peers/clients/bin/python -m pip install --quiet -c $(SERVE_CLIENTS)/constraints.txt -r $(SERVE_CLIENTS)/requirements.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/modelport demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=15 -q

bench: $(STAMP)
	$(PY) benchmarks/convert_bench.py
	$(PY) benchmarks/validate_bench.py
	$(PY) benchmarks/caffe_bench.py

# The model zoo (timm, transformers, keras.applications) through every route, peers beside it; resumable
# (benchmarks/results/zoo.json), regenerates docs/zoo-coverage.md.
# modelport pipeline (24 jobs) against a shell loop of single commands: --jobs 1 and 2, a local Ray head, the warm cache.
bench-pipeline: $(STAMP)
	$(PY) benchmarks/pipeline_bench.py

bench-zoo: $(STAMP)
	$(PY) benchmarks/zoo_bench.py

# Quantization for servers: fp32 vs int8 / int8-dynamic / fp16 on briefly trained models, held-out accuracy.
bench-quantize: $(STAMP)
	$(PY) benchmarks/quantize_bench.py

# Decoders with a cache: export time and size, greedy tokens/s in transformers eager, ONNX Runtime and
# transformers.js, torch.onnx.export alone beside them.
bench-transformers: $(STAMP)
	$(PY) benchmarks/transformers_bench.py

# ONNX -> TFLite against onnx2tf (installs onnx2tf into benchmarks/.venvs/onnx2tf on first use).
bench-onnx-tf: $(STAMP)
	$(PY) benchmarks/onnx_tf_bench.py

# ONNX -> PyTorch against onnx2torch (installs onnx2torch into benchmarks/.venvs/onnx2torch on first use).
bench-onnx-torch: $(STAMP)
	$(PY) benchmarks/onnx_torch_bench.py

# MXNet, Lightning and JAX/Flax to ONNX: time and error; the JAX routes side by side (jax2onnx in its own venv).
bench-sources: $(STAMP)
	$(PY) benchmarks/sources_bench.py

# The MXNet test models and the outputs real MXNet 1.9.1 computes on them (tests/data/mxnet/): MXNet
# needs numpy < 1.24, so it gets a venv of its own, never modelport's.
MXNET_VENV := $(VENV)/peers/mxnet
mxnet-fixtures:
	test -x $(MXNET_VENV)/bin/python || $(PYTHON) -m venv $(MXNET_VENV)
	$(MXNET_VENV)/bin/python -m pip install --quiet mxnet==1.9.1 "numpy==1.23.5"
	$(MXNET_VENV)/bin/python tests/data/mxnet/make_fixtures.py tests/data/mxnet

# TFLite bundle modes (fp32, fp16, dynamic, int8): size and LiteRT latency against Keras in TF.
bench-edge: $(STAMP)
	$(PY) benchmarks/edge_bench.py

# One MobileNetV2 through every edge runtime (LiteRT, ExecuTorch, ORT, ORT Mobile, TF.js, OpenVINO and
# their modes): size, latency at batch 1 / 1 thread, agreement with the source.
bench-runtimes: $(STAMP)
	$(PY) benchmarks/edge_runtimes_bench.py

# TF.js bundles of MobileNetV2 per weight encoding, with and without the TF.js rewrites, vs ONNX Runtime.
bench-tfjs: $(STAMP)
	$(PY) benchmarks/tfjs_bench.py

# modelport serve (ResNet-18) vs in-process ORT and MLServer 1.7 (own venv), then the REST stack alone:
# Starlette (used) vs FastAPI on the same raw-body handler.
bench-serve: $(STAMP)
	$(PY) benchmarks/serve_bench.py
	$(PY) benchmarks/rest_stack_bench.py

# The serving container (Dockerfile). Built with --network host (pip inside the build reaches PyPI
# the way this machine does) and this machine's CA bundle for pip; the base image is a local Debian
# bookworm made by debootstrap when it is not there yet (no registry needed).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
CONTAINER_BASE ?= modelport-base:bookworm
CONTAINER_IMAGE ?= modelport:$(VERSION)
CONTAINER_EXTRAS ?= serve

container:
	docker image inspect $(CONTAINER_BASE) >/dev/null 2>&1 || $(MAKE) container-base
	cp /etc/ssl/certs/ca-certificates.crt .container-ca.crt
	docker build --network host --build-arg BASE_IMAGE=$(CONTAINER_BASE) --build-arg EXTRAS=$(CONTAINER_EXTRAS) \
		-t $(CONTAINER_IMAGE) .

container-base:
	rm -rf .container-rootfs
	debootstrap --variant=minbase bookworm .container-rootfs http://deb.debian.org/debian
	tar -C .container-rootfs -c . | docker import - $(CONTAINER_BASE)
	rm -rf .container-rootfs

# Regenerate the Caffe protobuf module and the serving gRPC modules from their checked-in .proto files.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -I modelport/formats/caffe --python_out=modelport/formats/caffe \
		modelport/formats/caffe/caffe.proto
	$(PY) -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. modelport/serve/proto/grpc_service.proto

clean:
	rm -rf $(VENV) modelport-demo .pytest_cache
