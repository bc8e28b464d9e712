"""pytest set-up: finds the gaze module in the build tree and pins thread counts for reproducibility."""
import os
import pathlib
import sys

_build = pathlib.Path(os.environ.get("GAZE_BUILD_DIR", pathlib.Path(__file__).resolve().parents[2] / "build"))
sys.path.insert(0, str(_build / "python"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import torch  # noqa: E402

torch.set_num_threads(1)
