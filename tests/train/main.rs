//! Tests of the trainer (`cargo test --features train --test train`): ONNX export parity with
//! Burn's eval forward (onnxruntime + onnx.checker as references), augmentation alignment, and a
//! short real training run on LGG patients.

#[path = "../integration/harness.rs"]
mod harness;

mod augment;
mod common;
mod parity;
mod real_run;
mod sources;
