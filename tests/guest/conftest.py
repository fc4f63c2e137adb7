"""Guest tests run real programs in real KVM virtual machines.  Without /dev/kvm they
fail, each with a message that says so: they never skip silently."""

import os

import pytest


def _kvm_problem() -> str | None:
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm does not exist: guest tests need KVM (enable virtualization or load the kvm module)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not accessible: add the user running the tests to group kvm"
    return None


@pytest.fixture(autouse=True)
def require_kvm():
    problem = _kvm_problem()
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def tmp(tmp_path):
    return tmp_path
