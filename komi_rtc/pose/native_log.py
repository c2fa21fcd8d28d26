"""MediaPipe's native (C++) start-up chatter, filtered out of a pose worker's stderr.

At every start each estimator prints lines such as `W0000 ... inference_feedback_manager.cc
... Feedback manager requires a model with a single signature inference` straight to file
descriptor 2, before absl's logging can be configured, so neither `logging` nor an
environment variable silences them. They look like errors and are not. A worker process
routes its fd 2 through a pipe; a thread drops the known-benign lines and passes every
other line (real errors included) on to the original stderr unchanged.
"""

from __future__ import annotations

import os
import re
import threading

BENIGN = re.compile(
    rb"inference_feedback_manager\.cc"
    rb"|Created TensorFlow Lite XNNPACK delegate"
    rb"|All log messages before absl::InitializeLog\(\) is called"
    rb"|landmark_projection_calculator\.cc.*NORM_RECT without IMAGE_DIMENSIONS"
    # the Tasks API (issue 27), once per landmarker: a CPU server has no GPU to use
    rb"|task_runner\.cc.*GPU suport is not available"
)


def filter_native_stderr() -> threading.Thread:
    """Call once, first thing, in a worker process (it changes the process's fd 2). The
    returned thread ends when fd 2 is closed, after passing on the last line."""
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as lines, os.fdopen(original, "wb", 0) as out:
            for line in lines:
                if not BENIGN.search(line):
                    out.write(line)

    thread = threading.Thread(target=pump, name="native-stderr", daemon=True)
    thread.start()
    return thread
