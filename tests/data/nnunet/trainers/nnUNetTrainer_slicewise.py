"""Short-schedule nnU-Net trainers for slicewise's reference models (issue 29), runnable on 2 CPU cores.

nnUNetv2_train and nnUNetv2_predict find these classes through the environment variable
`nnUNet_extTrainer` pointing at this folder (nnunetv2/utilities/find_objects.py searches the
package first, then each path of `nnUNet_extTrainer`). Everything except the schedule and the batch
size is nnUNetTrainer's: same network, loss, augmentation, mirroring axes and inference.
"""

import torch

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainer_slicewiseB32(nnUNetTrainer):
    """Batch 32, 100 iterations an epoch, 4 epochs: the hippocampus parity reference.

    The planned 2d batch (312 for hippocampus) costs ~9 s an iteration on CPU; 32 costs ~0.6 s
    on two idle cores. Four epochs, not the dozen that segment well, because the shared machine
    the reference was trained on ran an epoch in 7-13 minutes (the schedule was cut from 12 to 5
    to 4 epochs during the runs, resuming with --c; each training log shows the rates used); the parity tests compare slicewise
    with nnU-Net on the same weights, for which any model that segments is a fair reference.
    A checkpoint every epoch lets `nnUNetv2_train --c` resume a run that was killed.
    """

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_iterations_per_epoch = 100
        self.num_val_iterations_per_epoch = 20
        self.num_epochs = 4
        self.save_every = 1

    def _set_batch_size_and_oversample(self):
        super()._set_batch_size_and_oversample()
        self.batch_size = 32


class nnUNetTrainer_slicewiseProbe(nnUNetTrainer_slicewiseB32):
    """Two short epochs of 30 batches of 8: probe models whose reference is nnU-Net's predictor on
    the same weights."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_iterations_per_epoch = 30
        self.num_val_iterations_per_epoch = 5
        self.num_epochs = 2

    def _set_batch_size_and_oversample(self):
        super()._set_batch_size_and_oversample()
        self.batch_size = 8

    def perform_actual_validation(self, save_probabilities: bool = False):
        """Skipped: a probe's reference is nnUNetv2_predict on its weights, not its Dice (and the
        full-volume validation costs more CPU than its training)."""
        self.print_to_log_file("slicewise probe: final validation skipped")


class nnUNetTrainer_slicewiseProbeCT(nnUNetTrainer_slicewiseProbe):
    """The CT probe, trained long enough (25 epochs of 40 batches of 8) to predict its labels, so
    that a mask comparison on it means something (60 iterations left it at background)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_iterations_per_epoch = 40
        self.num_epochs = 25
