# PyInstaller runtime hook (build.spec): runs before the app's own code.
#
# The bundle carries torchvision without its compiled ops (see hook-torchvision.py).
# torchvision/_meta_registrations.py registers fake (meta) kernels for the
# ``torchvision::nms``/``qnms`` ops unconditionally, which raises
# "operator torchvision::nms does not exist" when the ops library is absent.
# Those kernels only matter for torch.compile tracing of the ops, which do not
# exist here, so an empty placeholder module takes its place.
import sys
import types

_NAME = "torchvision._meta_registrations"
sys.modules.setdefault(_NAME, types.ModuleType(_NAME))
