"""``python -m hodei_docker.demo_image [--tag TAG] [--socket PATH]``: a worker image made offline.

The image the example Docker provider names (``hodei-jobs-worker:latest``) is on no registry: the real
worker is not part of this repository. This imports a stand-in from the host's static busybox, as the
tests do (:mod:`hodei_docker.testing`): its command sleeps an hour, so a provisioned worker runs until
it is released. An engine that already has the tag keeps its image. Used by ``scripts/run``.

Exit status: 0 when the engine has the image, 2 when no Docker engine answers, 3 when there is no
static busybox to build it from; each failure says how to get what is missing.
"""

from __future__ import annotations

import argparse
import sys

from hodei_docker.testing import BusyboxUnavailable, ensure_test_image

NO_ENGINE = 2
NO_BUSYBOX = 3
DEMO_TAG = "hodei-jobs-worker:latest"

GET_DOCKER = ("install Docker Engine (Debian/Ubuntu: `sudo apt-get install docker.io`; others: "
              "https://docs.docker.com/engine/install/), start it (`sudo systemctl start docker`), and make "
              "its socket usable by this user (`sudo usermod -aG docker $USER`, then log in again)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hodei_docker.demo_image", description=__doc__.split("\n")[0])
    parser.add_argument("--tag", default=DEMO_TAG, help=f"the image to make (default {DEMO_TAG})")
    parser.add_argument("--socket", default="/var/run/docker.sock", help="the engine's Unix socket")
    options = parser.parse_args(argv)

    import docker
    import docker.errors

    try:
        api = docker.APIClient(base_url=f"unix://{options.socket}", version="auto", timeout=30)
    except docker.errors.DockerException as exc:
        print(f"no Docker engine answers at unix://{options.socket} ({exc}).\nTo run real workers: {GET_DOCKER}.",
              file=sys.stderr)
        return NO_ENGINE
    try:
        had = bool(api.images(name=options.tag))
        ensure_test_image(api, options.tag)
    except BusyboxUnavailable as exc:
        print(f"cannot make {options.tag}: {exc}.\nDebian/Ubuntu: `sudo apt-get install busybox-static`.",
              file=sys.stderr)
        return NO_BUSYBOX
    except docker.errors.DockerException as exc:
        print(f"the Docker engine at unix://{options.socket} refused: {exc}", file=sys.stderr)
        return NO_ENGINE
    finally:
        api.close()
    print(f"{options.tag}: {'already on the engine' if had else 'imported from busybox (a stand-in worker that sleeps)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
