# The two commands of the README, plus the install they both start with.
#   make demo   the project's main job on generated demo data: Mask R-CNN + VSSD-T trained on a
#               COCO-format shapes dataset (AP after each epoch), multi-scale + flip test,
#               prediction pictures in $(DEMO_DIR)/<run>/predictions/, curves in $(DEMO_DIR)/curves.png
#   make demo-seg   the same for segmentation: UperNet + VSSD-T on an ADE20K-format dataset,
#               mIoU single-scale, then multi-scale + flip, overlays and curves.png in
#               $(SEG_DEMO_DIR)/predictions/
#   make demo-cls   classification: VSSD-T ImageClassifier on ImageFolder shapes, top-1 accuracy,
#               labelled pictures and curves.png in $(CLS_DEMO_DIR)/predictions/
#   make test   the test suite (what CI runs)
#   make test-stack   the part of the suite that exercises the installed OpenMMLab (CI runs it on
#               the OneDL forks: STACK=onedl make test-stack)
#   STACK=onedl make ...   the same on the maintained OneDL forks (requirements/stack-onedl.txt), in
#               their own venv (.venv-onedl) unless VENV= names one
STACK ?= $(or $(VSSD_MM_STACK),upstream)
export VSSD_MM_STACK := $(STACK)
VENV ?= $(if $(filter onedl,$(STACK)),.venv-onedl,.venv)
export VSSD_MM_VENV := $(abspath $(VENV))
PY := $(VSSD_MM_VENV)/bin/python

.PHONY: install test test-stack demo demo-seg demo-cls
install:
	@bash tools/install.sh

# the suite in TEST_WORKERS processes (pytest-xdist; 0: in this process), a test file per worker
# at a time so that a file's trained model is trained once
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The tests that exercise the installed OpenMMLab itself, for a second stack (CI: STACK=onedl):
# the per-version compatibility decisions, registration and drop-in into mmdet/mmseg configs, the
# three end-to-end demos (train, test, --tta), checkpoint loading, ONNX export, the tools (their
# errors; image_demo, browse_dataset, analyze_logs, confusion_matrix), mmpretrain's model hub.
STACK_TESTS := tests/stack tests/test_compat.py tests/test_packaging.py tests/e2e \
	tests/models/test_vssd_checkpoints.py tests/models/test_checkpoint_fit.py \
	tests/models/test_model_index.py tests/deploy/test_onnx_export.py \
	tests/engine/test_tool_errors.py tests/engine/test_mmcv_cuda.py tests/robustness tests/tools
test-stack: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(STACK_TESTS) $(PYTEST_ARGS)

DEMO_CONFIG := configs/mmdet/demo/mask_rcnn_vssd_t_demo.py
DEMO_DIR ?= work_dirs/demo_mask_rcnn_vssd_t

# --resume: running the demo again continues (or reuses) its training instead of overwriting it
demo: install
	$(PY) tools/make_demo_data.py coco --out data/coco_demo
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR) --resume
	$(PY) tools/test.py $(DEMO_CONFIG) "$$(cat $(DEMO_DIR)/last_checkpoint)" \
		--work-dir $(DEMO_DIR) --tta --show-dir predictions
	$(PY) tools/analyze_logs.py $(DEMO_DIR) --out $(DEMO_DIR)/curves.png

SEG_DEMO_CONFIG := configs/mmseg/demo/upernet_vssd_t_demo.py
SEG_DEMO_DIR ?= work_dirs/demo_upernet_vssd_t

demo-seg: install
	$(PY) tools/make_demo_data.py ade --out data/ade_demo/ADEChallengeData2016
	$(PY) tools/train.py $(SEG_DEMO_CONFIG) --work-dir $(SEG_DEMO_DIR) --resume
	$(PY) tools/test.py $(SEG_DEMO_CONFIG) "$$(cat $(SEG_DEMO_DIR)/last_checkpoint)" \
		--work-dir $(SEG_DEMO_DIR) --tta --show-dir $(SEG_DEMO_DIR)/predictions
	$(PY) tools/analyze_logs.py $(SEG_DEMO_DIR) --out $(SEG_DEMO_DIR)/predictions/curves.png

CLS_DEMO_CONFIG := configs/mmpretrain/demo/vssd_t_demo.py
CLS_DEMO_DIR ?= work_dirs/demo_vssd_t_cls

demo-cls: install
	$(PY) tools/make_demo_data.py imagenet --out data/imagenet_demo
	$(PY) tools/train.py $(CLS_DEMO_CONFIG) --work-dir $(CLS_DEMO_DIR) --resume
	$(PY) tools/test.py $(CLS_DEMO_CONFIG) "$$(cat $(CLS_DEMO_DIR)/last_checkpoint)" \
		--work-dir $(CLS_DEMO_DIR) --show-dir $(CLS_DEMO_DIR)/predictions
	$(PY) tools/analyze_logs.py $(CLS_DEMO_DIR) --out $(CLS_DEMO_DIR)/predictions/curves.png
