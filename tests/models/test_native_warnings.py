"""metatomic's native warning about a CUDA-only extension dependency (sphericart's CUDA
stream library) is dropped on machines without CUDA; everything else on stderr stays."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("metatomic.torch")

from ase_bodyorder.models.metatomic_loading import (  # noqa: E402
    drop_cuda_only_warnings,
    quiet_cuda_only_dependencies,
)

BLOCK = (
    "[W1207 06:58:42.240701156 model.cpp:1039] Warning: failed to load extension dependency "
    "sphericart_torch_cuda_stream. We tried the following:\n"
    " - loading sphericart_torch_cuda_stream directly by name\n"
    "You can set `METATOMIC_DEBUG_EXTENSIONS_LOADING=1` in your environemnt for more "
    "information\n"
    " (function load_library)\n"
)


def test_only_the_cuda_only_dependency_block_is_dropped():
    other = (
        "[W1207 06:58:42 model.cpp:1039] Warning: failed to load extension dependency "
        "libfoo. We tried the following:\n (function load_library)\n"
    )
    assert drop_cuda_only_warnings("before\n" + BLOCK + "after\n") == "before\nafter\n"
    assert drop_cuda_only_warnings(BLOCK + other) == other
    assert drop_cuda_only_warnings(BLOCK * 3) == ""


def test_other_native_output_and_errors_pass_through(capfd):
    import torch

    if torch.cuda.is_available():
        pytest.skip("with CUDA the warning is kept")
    with pytest.raises(RuntimeError, match="boom"), quiet_cuda_only_dependencies():
        os.write(2, BLOCK.encode() + b"native line\n")
        raise RuntimeError("boom")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "native line\nafter\n"


@pytest.mark.slow
def test_loading_a_shipped_soap_bpnn_writes_no_cuda_warning():
    # regression: every SOAP-BPNN load printed metatomic's 4-line warning that
    # sphericart_torch_cuda_stream did not load, before any output of the command
    code = "from ase_bodyorder.models import load_model; load_model('soap-bpnn-h8-high')"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "cuda_stream" not in done.stderr
