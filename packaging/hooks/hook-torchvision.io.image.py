"""Replaces the contributed hook, which adds the compiled ``torchvision.image``
extension (CUDA-linked in PyPI's wheels); the app decodes images with Pillow.
See hook-torchvision.py."""

hiddenimports: list[str] = []
