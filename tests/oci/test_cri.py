"""Kubernetes' side of containerd: the CRI v1 API (what the kubelet calls), driven from
Python with the CRI protobuf stubs, running a pod with the RuntimeClass handler
`kontain` (deploy/kubernetes) side by side with runc's handler.

The containerd is the tests' own (kit.Containerd: the CRI plugin loaded, the runtime
section as deploy/kubernetes/containerd.toml gives it); the pod uses the node's network
(no CNI here), its sandbox image is a `km image` of tests/programs/pid1.c.
"""

import json
import os

import grpc
import kit
import pytest
from cri_api.v1 import api_pb2 as api  # (container-runtime-interface-api: the test extras)
from cri_api.v1 import api_pb2_grpc as rpc

from kt import build


@pytest.fixture(scope="session")
def cri(tmp_path_factory):
    root = tmp_path_factory.mktemp("cri")
    c = kit.Containerd(root, namespace="k8s.io")
    c.start()
    try:
        c.import_images(dict((("pause", build("pid1", "musl")), ("busybox", "/bin/busybox"))))
        channel = grpc.insecure_channel(f"unix://{c.address}")
        yield rpc.RuntimeServiceStub(channel), root
        channel.close()
    finally:
        c.stop()


def pod(service, root, handler: str, command: list[str]):
    """Run a pod with one container under ``handler``; (exit code, log lines, whether the
    sandbox's process's executable)."""
    logs = root / f"logs-{handler}"
    meta = api.PodSandboxMetadata(name=f"kt-{handler}", uid=f"uid-{handler}", namespace="default", attempt=0)
    config = api.PodSandboxConfig(metadata=meta, log_directory=str(logs), linux=api.LinuxPodSandboxConfig(
        security_context=api.LinuxSandboxSecurityContext(namespace_options=api.NamespaceOption(network=api.NODE))))
    sandbox = service.RunPodSandbox(api.RunPodSandboxRequest(config=config, runtime_handler=handler)).pod_sandbox_id
    try:
        info = service.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=sandbox, verbose=True)).info
        pid = json.loads(info["info"])["pid"]

        def exe():
            return os.readlink(f"/proc/{pid}/exe")
        # (started: the runtime's init execs the sandbox's program a moment later; until then its
        # executable is the runtime's, shown as "/" once it has entered the container's root)
        kit.wait_for(lambda: exe() != "/" and "runc" not in exe() and "crun" not in exe(), what="the sandbox's program")
        sandbox_exe = exe()
        container = api.ContainerConfig(
            metadata=api.ContainerMetadata(name="main"), image=api.ImageSpec(image="localhost/kt-busybox:latest"),
            command=command, log_path="main.log", linux=api.LinuxContainerConfig(
                security_context=api.LinuxContainerSecurityContext(
                    seccomp=api.SecurityProfile(profile_type=api.SecurityProfile.RuntimeDefault))))
        cid = service.CreateContainer(api.CreateContainerRequest(pod_sandbox_id=sandbox, config=container,
                                                                 sandbox_config=config)).container_id
        service.StartContainer(api.StartContainerRequest(container_id=cid))

        def status():
            return service.ContainerStatus(api.ContainerStatusRequest(container_id=cid)).status
        kit.wait_for(lambda: status().state == api.CONTAINER_EXITED, what="the container's end")
        lines = [line.split(" ", 3)[3] for line in (logs / "main.log").read_text().splitlines()]
        return status().exit_code, lines, sandbox_exe
    finally:
        service.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=sandbox))
        service.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=sandbox))


def test_a_pod_with_the_runtime_class_kontain(cri):
    service, root = cri
    command = ["/busybox", "sh", "-c", "echo hello from the pod; /busybox grep Seccomp: /proc/self/status; exit 3"]
    runc = pod(service, root, "runc", command)
    kontain = pod(service, root, "kontain", command)
    assert kontain[:2] == runc[:2] == (3, ["hello from the pod", "Seccomp:\t2"])
    km = "/.kontain/lib/ld-linux-x86-64.so.2"  # the sandbox, too, runs under km with kontain
    assert kontain[2].endswith(km) and not runc[2].endswith(km), (kontain[2], runc[2])
