"""tndsl: tensor-network diagrams compiled to PyTorch, rendered, and rewritten."""
