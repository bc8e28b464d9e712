"""The `gaze` command of a pip-installed gaze: the compiled command line shipped inside the package
(gaze/bin/gaze), run in this process's place with the same arguments."""
import os
import sys


def main():
    exe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "gaze")
    if not os.access(exe, os.X_OK):
        sys.exit(f"gaze: the command line is missing from this installation ({exe}); reinstall gaze")
    os.execv(exe, [exe, *sys.argv[1:]])
