"""Import trained nnU-Net v2 `2d` models into slicewise (issue 29).

``python -m slicewise.nnunet export RESULTS_FOLDER --out MODEL.onnx`` turns nnU-Net's
``DatasetXXX_Name/Trainer__Plans__2d`` folder into one slicewise ONNX model: the selected folds'
networks in one graph averaging their logits, with the contract (``slicewise.preprocess = tiled``)
that makes the engine preprocess, tile, mirror and resample the way nnUNetv2_predict does.

Needs PyTorch and nnunetv2 (``scripts/setup --nnunet`` installs them into ``.venv-nnunet``); the
rest of the slicewise package does not. Files: ``results.py`` (reading the folder, refusals),
``contract.py`` (the ``slicewise.*`` keys), ``export.py`` (torch -> ONNX), ``__main__.py`` (CLI).
"""
