"""Session fixtures shared by the reliability tests: one tiny synthetic CIFAR-10 and one
uninterrupted 3-epoch CIFAR run on it, which the crash and resume tests compare against."""
import types

import pytest

from cifar_fixtures import write_cifar10, write_wrapper
from reliability_helpers import CIFAR_RUN, call_run_cifar


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory):
    """100 training and 50 test images in CIFAR-10's format, the md5s to patch, and the
    wrapper script that runs run_cifar.py on them in a subprocess."""
    root = tmp_path_factory.mktemp("tiny_cifar")
    arrays, checksums = write_cifar10(root / "data", n_train=100, n_test=50, seed=3)
    return types.SimpleNamespace(data_dir=str(root / "data"), checksums=checksums, arrays=arrays,
                                 wrapper=str(write_wrapper(root, checksums)))


@pytest.fixture(scope="session")
def cifar_reference(tiny_cifar, tmp_path_factory):
    """The output directory of an uninterrupted 3-epoch run with CIFAR_RUN's flags."""
    out = tmp_path_factory.mktemp("cifar_reference") / "out"
    code, stdout, stderr = call_run_cifar(tiny_cifar, [*CIFAR_RUN, "--epochs", 3, "--output_dir", out])
    assert code == 0, stdout + stderr
    return str(out)


@pytest.fixture(scope="module")
def memory_cap():
    """Make absurd allocations from garbled length fields fail fast instead of swapping."""
    try:
        import resource
    except ImportError:  # not on this platform: nothing to cap
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        vm_kib = int(status.read().split("VmSize:")[1].split()[0])
    cap = vm_kib * 1024 + 4 * 2**30
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
