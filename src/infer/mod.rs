//! Segmentation with ONNX models through ONNX Runtime (owned by the engine work).
