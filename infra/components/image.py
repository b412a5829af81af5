"""The FL image: built from the repository's Dockerfile, or taken from the configured registry.

Docker form: ``docker build`` on the target daemon (pushed too when ``image.push``); the
containers run the built image by its ID, so a rebuild replaces them. Kubernetes form: the
configured reference (``image.repository:image.tag``), or the digest of the image this
program built and pushed.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker as docker

from infra.stacks.model import StackSettings, Target

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPOSITORY_ROOT / "Dockerfile"


class FlImage(pulumi.ComponentResource):
    """``ref``: what containers and pods should run."""

    ref: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        registry_password: pulumi.Output[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sovereign-map:index:Image", name, None, opts)
        image = settings.image
        if settings.build_image:
            registry = None
            if image.push:
                registry = docker.RegistryArgs(
                    server=image.repository.split("/", 1)[0],
                    username=image.registry_username,
                    password=registry_password,
                )
            built = docker.Image(
                f"{name}-build",
                image_name=image.reference,
                build=docker.DockerBuildArgs(
                    context=str(REPOSITORY_ROOT),
                    dockerfile=str(DOCKERFILE),
                    platform=image.platform,
                ),
                skip_push=not image.push,
                registry=registry,
                opts=pulumi.ResourceOptions(parent=self),
            )
            if settings.target is Target.DOCKER or image.push:
                # the local image ID, or repository@sha256:… once pushed
                self.ref = built.repo_digest
            else:
                # built on a local daemon a cluster can see (minikube/kind docker-env)
                self.ref = built.image_name
        elif settings.target is Target.DOCKER:
            pulled = docker.RemoteImage(
                f"{name}-pull",
                name=image.reference,
                keep_locally=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.ref = pulled.image_id
        else:
            self.ref = pulumi.Output.from_input(image.reference)
        self.register_outputs({"ref": self.ref})
