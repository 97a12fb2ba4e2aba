"""Fixtures shared by several test modules: synthetic CIFARs in CIFAR's own format, the job
run_cifar.py builds before training, one uninterrupted 3-epoch CIFAR run that the crash and
resume tests compare against, and a memory cap for the damaged-file property tests."""
import types

import pytest
import torch

from cifar_fixtures import (call_run_cifar, patch_checksums, write_cifar10, write_cifar100,
                            write_wrapper)
from helpers import CIFAR_RUN

CIFAR10_TRAIN, CIFAR10_TEST = 200, 100

# One intra-op thread for whatever trains in the test process (the scripts' --threads still
# applies inside their main). The suite runs on 2 cores shared with other work, where a
# second thread only contends: under load, ResNet18 steps on a few images measured 5-10x
# slower with 2 threads than with 1.
torch.set_num_threads(1)


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


@pytest.fixture(scope="session")
def cifar10(tmp_path_factory):
    """(data_dir, arrays, checksums) of a CIFAR10_TRAIN/CIFAR10_TEST-image CIFAR-10."""
    root = tmp_path_factory.mktemp("cifar_data")
    arrays, checksums = write_cifar10(root, CIFAR10_TRAIN, CIFAR10_TEST)
    return root, arrays, checksums


@pytest.fixture(scope="session")
def cifar100(tmp_path_factory):
    """(data_dir, arrays, checksums) of a 150/60-image CIFAR-100."""
    root = tmp_path_factory.mktemp("cifar100_data")
    arrays, checksums = write_cifar100(root, 150, 60)
    return root, arrays, checksums


@pytest.fixture
def run_until_training(monkeypatch, cifar10, cifar100):
    """``run(*flags, output_dir=...)`` -> the TrainingJob run_cifar.main builds, untrained:
    ``run_job`` is replaced by a function that keeps the job, which holds exactly the ids,
    images, labels, optimiser and schedule the loop would use."""
    import run_cifar

    for _, _, checksums in (cifar10, cifar100):
        patch_checksums(monkeypatch, checksums)
    jobs = []
    monkeypatch.setattr(run_cifar, "run_job", jobs.append)

    def run(*flags, output_dir, data_dir=None):
        argv = ["--output_dir", str(output_dir), "--data_dir", str(data_dir or cifar10[0]),
                "--no-cuda", "--threads", "1", *map(str, flags)]
        run_cifar.main(argv)
        return jobs.pop()

    return run


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
