"""Build hook: generates the gRPC stubs from the buf module and ships the shared service config.

Nothing generated is committed. `build_py` runs grpcio-tools' protoc over
backoffice/webhooks/v1/*.proto (with mypy-protobuf's plugins for the .pyi stubs) into the build
directory, so the wheel holds `backoffice.webhooks.v1.*_pb2` beside `backoffice_webhooks`, and
copies clients/service-config.json into `backoffice_webhooks/`.

Where the sources are: in a checkout, ../../proto and ../service-config.json. pip (21.3 and
later) builds a local directory in place, so `pip install ./clients/python` finds them there,
isolated build or not. An sdist cannot reach outside its own tree, so `sdist` copies them in
(proto/ and service-config.json beside this file), and a build from the sdist uses those.

google/api/field_behavior.proto is only an import here: its generated module is
googleapis-common-protos' `google.api.field_behavior_pb2` (the same file byte for byte, as
proto/buf.yaml says it is vendored from that package), so two modules never register one file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
PROTO_PACKAGE = Path("backoffice/webhooks/v1")
# The proto files the stubs are generated from and, for the sdist, the imports they need.
SDIST_PROTOS = [PROTO_PACKAGE, Path("google/api/field_behavior.proto")]


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise SystemExit(
        "backoffice-webhooks: cannot find "
        + " or ".join(str(c) for c in candidates)
        + " (build from a checkout of the repository, or from its sdist)"
    )


def proto_root() -> Path:
    return _first_existing(
        HERE / "proto" / PROTO_PACKAGE, HERE.parent.parent / "proto" / PROTO_PACKAGE
    ).parents[2]


def service_config() -> Path:
    return _first_existing(HERE / "service-config.json", HERE.parent / "service-config.json")


def _plugin(name: str) -> str:
    # pip puts the build environment's scripts (mypy-protobuf's plugins) on PATH.
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"backoffice-webhooks: {name} (from mypy-protobuf) is not on PATH")
    return found


def generate(root: Path, out: Path) -> None:
    """Runs protoc over the service's proto files into `out`."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    files = sorted(str(p) for p in (root / PROTO_PACKAGE).glob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"--proto_path={root}",
        f"--proto_path={well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"backoffice-webhooks: protoc failed on {root / PROTO_PACKAGE}")
    # `backoffice` and `backoffice.webhooks` stay namespace packages (other back-office APIs may
    # share them); the leaf is a regular, typed package (PEP 561).
    package = out / PROTO_PACKAGE
    (package / "__init__.py").write_text('"""Generated from backoffice/webhooks/v1/*.proto."""\n')
    (package / "py.typed").write_text("")


class BuildPy(build_py):
    """build_py, plus the generated stubs and the service config."""

    def run(self) -> None:
        super().run()
        out = Path(self.build_lib)
        generate(proto_root(), out)
        shutil.copyfile(service_config(), out / "backoffice_webhooks" / "service-config.json")


class Sdist(sdist):
    """sdist, plus the proto files and the service config from outside this directory."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        base = Path(base_dir)
        root = proto_root()
        for item in SDIST_PROTOS:
            source = root / item
            if source.is_dir():
                shutil.copytree(source, base / "proto" / item, dirs_exist_ok=True)
            else:
                (base / "proto" / item).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, base / "proto" / item)
        shutil.copyfile(service_config(), base / "service-config.json")


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
