//! Tests of the trainer (`cargo test -p slicewise-train`): ONNX export parity with
//! Burn's eval forward (onnxruntime + onnx.checker as references), augmentation alignment, and a
//! short real training run on LGG patients.

use slicewise_tests as harness;

mod augment;
mod common;
mod data_parity;
mod ensemble;
mod losses;
mod parity;
mod real_run;
mod sources;
