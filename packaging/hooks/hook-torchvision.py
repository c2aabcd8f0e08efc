"""torchvision as Upscaler uses it: the pure-Python model definitions only.

Replaces pyinstaller-hooks-contrib's hook, which adds torchvision's compiled ops
(``torchvision._C``) as a hidden import.  The app only builds ResNet blocks from
``torchvision.models``; it never calls the compiled ops (nms, roi_align, image
decoding).  PyPI's Linux torchvision wheels are CUDA builds whose ``_C.so`` and
``image.so`` link ``libtorch_cuda.so`` and ``libc10_cuda.so``, which a CPU-only
torch does not have, so bundling them would either fail to load or drag CUDA in.
``rthook_torchvision.py`` lets ``import torchvision`` succeed without them.
"""

hiddenimports: list[str] = []
# Keep the sources beside the bytecode as the contributed hook does (TorchScript
# and torch.fx read them via inspect).
module_collection_mode = "pyz+py"
