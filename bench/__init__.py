"""Benchmarks: tndsl against PyTorch's own way and einconv 0.1.0 on convolution ops."""
