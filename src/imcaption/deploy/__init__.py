"""Deployment: ONNX export of trained recognizers and their ONNX Runtime reader."""
