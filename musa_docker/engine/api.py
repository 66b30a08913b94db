"""The Docker Engine, behind one small interface. The only module that imports `docker`.

It connects as the docker CLI would (an explicit host, else DOCKER_HOST with DOCKER_TLS_VERIFY /
DOCKER_CERT_PATH, else the current docker context), negotiates the API version (Engine 20.10,
API 1.41, and newer), yields build events as they come, and turns SDK errors into `EngineError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional

import docker
import requests
from docker import errors as docker_errors
from urllib3.exceptions import ProtocolError

from ..errors import EngineError, PushError
from .docker_cli import BuildSettings


@dataclass(frozen=True)
class Image:
    id: str
    tags: tuple
    labels: Dict[str, str]
    size: int
    created: str
    platform: str = ""        # os/architecture of its config: linux/arm64


class _APIClient(docker.APIClient):
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace a session's CA (docker-py #2433),
    so a bundle meant for downloads would break a TLS engine: the engine's own CA
    (DOCKER_CERT_PATH/ca.pem) wins, as it does for the docker CLI."""

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        return super().merge_environment_settings(url, proxies, stream, self.verify if verify is None else verify, cert)


def _client_kwargs(host: Optional[str], env: Mapping[str, str]) -> dict:
    if host:
        return docker.utils.kwargs_from_env(environment={**env, "DOCKER_HOST": host})
    if env.get("DOCKER_HOST"):
        return docker.utils.kwargs_from_env(environment=dict(env))
    return _context_kwargs(env)


def _context_kwargs(env: Mapping[str, str]) -> dict:
    """The engine of the docker context the CLI would use: $DOCKER_CONTEXT, else the config's
    currentContext. Read from the CLI's own files (contexts/meta/<sha256 of name>/meta.json and
    contexts/tls/...), with `env` as given rather than the process's environment."""
    config = Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME") or Path.home()) / ".docker")
    name = env.get("DOCKER_CONTEXT")
    if not name:
        try:
            name = json.loads((config / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError, AttributeError):
            name = None
    if not name or name == "default":
        return {}
    key = hashlib.sha256(name.encode()).hexdigest()
    try:
        meta = json.loads((config / "contexts" / "meta" / key / "meta.json").read_text())
        endpoint = meta["Endpoints"]["docker"]
    except (OSError, ValueError, KeyError, TypeError):
        raise EngineError(f"docker context {name!r} does not exist in {config}: see `docker context ls`") from None
    kwargs = {"base_url": endpoint["Host"]}
    tls = config / "contexts" / "tls" / key / "docker"
    if (tls / "cert.pem").exists() or (tls / "ca.pem").exists():
        ca = tls / "ca.pem"
        kwargs["tls"] = docker.tls.TLSConfig(
            client_cert=(str(tls / "cert.pem"), str(tls / "key.pem")) if (tls / "cert.pem").exists() else None,
            ca_cert=str(ca) if ca.exists() else None,
            verify=not endpoint.get("SkipTLSVerify", False),
        )
    return kwargs


class Engine:
    """A connection to one engine. Raises EngineError, naming the host, when it does not answer."""

    def __init__(self, host: Optional[str] = None, env: Optional[Mapping[str, str]] = None):
        env = os.environ if env is None else env
        try:
            kwargs = _client_kwargs(host, env)
        except docker_errors.TLSParameterError as err:
            cert_path = env.get("DOCKER_CERT_PATH") or os.path.join(env.get("HOME") or "~", ".docker")
            missing = [n for n in ("ca.pem", "cert.pem", "key.pem") if not os.path.isfile(os.path.join(cert_path, n))]
            raise EngineError(
                f"the TLS settings for the Docker engine point nowhere: DOCKER_CERT_PATH={cert_path} lacks "
                f"{', '.join(missing) or 'a usable certificate'}; put the engine's ca.pem and your cert.pem "
                "and key.pem there, or unset DOCKER_TLS_VERIFY and DOCKER_CERT_PATH"
            ) from err
        except (docker_errors.DockerException, ValueError) as err:
            raise EngineError(
                f"the Docker engine address {host or env.get('DOCKER_HOST') or ''} is not valid ({_reason(err)}): "
                "give --docker-host / DOCKER_HOST as unix:///path, tcp://HOST:PORT or ssh://USER@HOST"
            ) from err
        self.host = kwargs.get("base_url") or "unix:///var/run/docker.sock"
        try:
            self.api = _APIClient(version=None, timeout=120, **kwargs)
        except ValueError as err:     # an address that does not parse, e.g. tcp://[::1
            raise EngineError(
                f"the Docker engine address {self.host} is not valid ({err}): give --docker-host / "
                "DOCKER_HOST as unix:///path, tcp://HOST:PORT or ssh://USER@HOST"
            ) from err
        except docker_errors.DockerException as err:
            if "HTTP request to an HTTPS server" in str(err):
                raise EngineError(
                    f"the Docker engine at {self.host} speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH "
                    "to the dir with its ca.pem, cert.pem and key.pem"
                ) from err
            raise EngineError(
                f"the Docker engine at {self.host} does not answer ({_reason(err)}): start it "
                "(e.g. `sudo systemctl start docker`) or point --docker-host / DOCKER_HOST at one that runs"
            ) from err

    @property
    def api_version(self) -> str:
        """The API version negotiated with the engine ("1.41")."""
        return self.api.api_version

    # --- images -----------------------------------------------------------------------------------

    def image(self, ref: str) -> Optional[Image]:
        try:
            data = self.api.inspect_image(ref)
        except docker_errors.NotFound:
            return None
        except docker_errors.APIError as err:
            raise EngineError(f"inspecting image {ref} failed: {_reason(err)}") from err
        return Image(
            id=data["Id"],
            tags=tuple(data.get("RepoTags") or ()),
            labels=dict((data.get("Config") or {}).get("Labels") or {}),
            size=int(data.get("Size") or 0),
            created=data.get("Created", ""),
            platform=f"{data.get('Os') or 'linux'}/{data.get('Architecture') or ''}".rstrip("/"),
        )

    def tag(self, image_id: str, ref: str) -> None:
        name, _, tag = ref.rpartition(":")
        try:
            self.api.tag(image_id, name, tag)
        except docker_errors.APIError as err:
            raise EngineError(f"tagging {image_id[:19]} as {ref} failed: {_reason(err)}") from err

    def remove_image(self, image_id: str) -> None:
        try:
            self.api.remove_image(image_id, noprune=False)
        except docker_errors.APIError:
            pass

    def pull(self, ref: str) -> None:
        if "@" in ref:       # name@sha256:…: the SDK splits it and asks for that digest
            name, tag = ref, None
        else:
            name, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
        try:
            for _ in self.api.pull(name, tag=tag, stream=True, decode=True):
                pass
        except docker_errors.APIError as err:
            raise EngineError(f"pulling {ref} failed: {_reason(err)}") from err

    def history(self, ref: str) -> List[dict]:
        """The image's history, newest first: one row per step (CreatedBy, Size). Raises EngineError."""
        try:
            return self.api.history(ref)
        except docker_errors.APIError as err:
            raise EngineError(f"reading the history of image {ref} failed: {_reason(err)}") from err

    def inspect(self, ref: str) -> dict:
        try:
            return self.api.inspect_image(ref)
        except docker_errors.APIError as err:
            raise EngineError(f"inspecting image {ref} failed: {_reason(err)}") from err

    def saved(self, ref: str) -> Iterator[bytes]:
        """The image as `docker save` writes it (a tar of its layer tars and config), streamed in
        chunks, never written to disk. Raises EngineError."""
        try:
            yield from self.api.get_image(ref)
        except (docker_errors.DockerException, requests.RequestException) as err:
            raise EngineError(f"reading the layers of image {ref} from {self.host} failed: {_reason(err)}") from err

    def load(self, archive: Iterable[bytes]) -> str:
        """Load a `docker save`-format archive (streamed); return the loaded image's id."""
        image_id = None
        try:
            for event in self.api.load_image(archive):
                if "error" in event:
                    detail = (event.get("errorDetail") or {}).get("message") or event["error"]
                    raise EngineError(f"the engine at {self.host} refused the image layer: {detail}")
                text = event.get("stream", "")
                if "Loaded image ID:" in text:
                    image_id = text.split("Loaded image ID:", 1)[1].strip()
        except docker_errors.APIError as err:
            raise EngineError(f"loading an image layer into {self.host} failed: {_reason(err)}") from err
        if not image_id:
            raise EngineError(f"the engine at {self.host} loaded no image from the layer archive")
        return image_id

    def save(self, ref: str, target) -> None:
        """Write `ref` as a `docker save` archive to the open binary file `target`."""
        try:
            for chunk in self.api.get_image(ref):
                target.write(chunk)
        except (docker_errors.APIError, requests.RequestException) as err:
            raise EngineError(f"saving image {ref} from {self.host} failed: {_reason(err)}") from err

    def load_saved(self, archive: Iterable[bytes]) -> List[str]:
        """Load a `docker save` archive (streamed); return what the engine says it loaded (tags or ids)."""
        loaded = []
        try:
            for event in self.api.load_image(archive):
                if "error" in event:
                    detail = (event.get("errorDetail") or {}).get("message") or event["error"]
                    raise EngineError(f"the engine at {self.host} refused the image archive: {detail}")
                text = event.get("stream", "")
                for word in ("Loaded image:", "Loaded image ID:"):
                    if word in text:
                        loaded.append(text.split(word, 1)[1].strip())
        except (docker_errors.APIError, requests.RequestException) as err:
            raise EngineError(f"loading an image archive into {self.host} failed: {_reason(err)}") from err
        return loaded

    # --- builds -----------------------------------------------------------------------------------

    def build(self, context: Iterable[bytes], s: BuildSettings, cache_from: Iterable[str] = ()) -> Iterator[dict]:
        """Send the context (a tar stream) and yield the decoded build events as they come.
        `cache_from`: images whose layers may serve as cache."""
        try:
            yield from self.api.build(
                fileobj=context, custom_context=True, dockerfile=s.dockerfile,
                buildargs=dict(s.buildargs), labels=dict(s.labels), network_mode=s.network,
                nocache=s.nocache, pull=s.pull, rm=True, forcerm=True, decode=True,
                cache_from=list(cache_from) or None, platform=s.platform or None,
                timeout=None,   # a silent compile step may take an hour; the build is not stuck
            )
        except docker_errors.APIError as err:
            raise EngineError(f"the engine at {self.host} refused the build: {_reason(err)}") from err
        except (docker_errors.DockerException, requests.RequestException, ProtocolError) as err:
            # The engine died or the connection dropped mid-build (urllib3's ProtocolError
            # escapes requests while a chunked response is read).
            raise EngineError(
                f"the Docker engine at {self.host} broke off the build ({_reason(err)}): nothing was tagged; "
                "check that the engine runs (`docker info`), then run again"
            ) from err

    # --- containers -------------------------------------------------------------------------------

    def run(self, image: str, command: List[str], env: Optional[List[str]] = None) -> tuple:
        """Run `command` in a throwaway container; return (exit code, combined output)."""
        try:
            cid = self.api.create_container(
                image, command=command, entrypoint=[], environment=env or [],
                host_config=self.api.create_host_config(network_mode="none"),
            )["Id"]
        except docker_errors.APIError as err:
            raise EngineError(f"starting a check container from {image} failed: {_reason(err)}") from err
        try:
            self.api.start(cid)
            code = self.api.wait(cid, timeout=600)["StatusCode"]
            out = self.api.logs(cid, stdout=True, stderr=True).decode("utf-8", "replace")
            return code, out
        except (docker_errors.APIError, requests.exceptions.RequestException) as err:
            raise EngineError(f"running {command[0]} in {image[:19]} failed: {_reason(err)}") from err
        finally:
            self.api.remove_container(cid, force=True)

    def run_script(self, image: str, files: Mapping[str, bytes], command: List[str], *, env: Optional[List[str]] = None,
                   network: str = "host", timeout: int = 900) -> tuple:
        """Run `command` in a throwaway container of `image` on `network`, with `files` (absolute
        paths -> bytes) put in before it starts; return (exit code, combined output). For what must
        be resolved inside the OS image itself (its apt transaction). Raises EngineError."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            dirs = sorted({str(Path(p).parent).lstrip("/") for p in files})
            for d in dirs:
                parts = Path(d).parts
                for i in range(1, len(parts) + 1):
                    info = tarfile.TarInfo("/".join(parts[:i]))
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            for path, data in sorted(files.items()):
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
        try:
            cid = self.api.create_container(image, command=command, entrypoint=[], environment=env or [],
                                            host_config=self.api.create_host_config(network_mode=network))["Id"]
        except docker_errors.ImageNotFound as err:
            raise EngineError(f"image {image} does not exist on {self.host}") from err
        except (docker_errors.DockerException, requests.RequestException) as err:
            raise EngineError(f"creating a container from {image} on {self.host} failed: {_reason(err)}") from err
        return self._run_to_end(cid, f"the container from {image}", timeout, archive=buffer.getvalue())

    def container(self, name: str) -> Optional[dict]:
        try:
            return self.api.inspect_container(name)
        except docker_errors.NotFound:
            return None

    def create_container(self, image: str, name: str, *, command: List[str], env: List[str],
                         shm_size: str, privileged: bool, group_add: List[str], network: str) -> str:
        try:
            return self.api.create_container(
                image, name=name, command=command, environment=env, tty=True, stdin_open=True,
                working_dir=None, host_config=self.api.create_host_config(
                    shm_size=shm_size, privileged=privileged, group_add=group_add or None,
                    network_mode=network,
                ),
            )["Id"]
        except docker_errors.ImageNotFound as err:
            raise EngineError(f"image {image} does not exist on {self.host}: build it first or check -i") from err
        except docker_errors.APIError as err:
            raise EngineError(f"creating container {name} from {image} failed: {_reason(err)}") from err

    def remove_container(self, name: str) -> None:
        try:
            self.api.remove_container(name, force=True)
        except docker_errors.APIError:
            pass

    def start(self, name: str) -> None:
        try:
            self.api.start(name)
        except docker_errors.APIError as err:
            raise EngineError(f"starting container {name} failed: {_reason(err)}") from err

    def exec_stream(self, name: str, command: List[str], env: Optional[List[str]] = None):
        """Run `command` in a running container; yield output chunks, then return its exit code."""
        try:
            exec_id = self.api.exec_create(name, command, environment=env or None, tty=False)["Id"]
            for chunk in self.api.exec_start(exec_id, stream=True, demux=False):
                yield chunk
        except docker_errors.APIError as err:
            raise EngineError(f"running a command in container {name} failed: {_reason(err)}") from err
        return self.api.exec_inspect(exec_id)["ExitCode"]

    # --- registries -------------------------------------------------------------------------------

    def saved_auth(self, registry: Optional[str], env: Mapping[str, str]) -> dict:
        """The credentials `docker login` saved for `registry` (None: Docker Hub) in the docker
        config of `env` ($DOCKER_CONFIG/config.json, else ~/.docker/config.json, credential
        helpers included); {} when there are none. Raises EngineError when it cannot be read."""
        root = env.get("DOCKER_CONFIG") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")
        path = os.path.join(root, "config.json")
        if not os.path.isfile(path):
            # docker-py would fall back to the config of this process's own environment.
            return {}
        try:
            found = docker.auth.load_config(path, credstore_env=dict(env)).resolve_authconfig(registry)
        except docker_errors.DockerException as err:
            raise EngineError(f"the docker config {path} cannot be read: {_reason(err)}") from err
        return dict(found or {})

    def login(self, username: str, password: str, registry: Optional[str]) -> None:
        """Have the engine check the credentials with the registry; nothing is written to disk.
        Raises PushError (its `reason` is the engine's own words) when they are refused or
        the registry cannot be reached."""
        try:
            self.api.login(username, password=password, registry=registry, reauth=True)
        except docker_errors.APIError as err:
            raise PushError(f"login to {registry or 'Docker Hub'} failed", _reason(err)) from err
        except docker_errors.DockerException as err:
            raise EngineError(f"the engine at {self.host} broke off the login: {_reason(err)}") from err

    def push(self, ref: str, auth: Optional[dict]) -> Iterator[dict]:
        """Push `ref` (name:tag) and yield the decoded push events as they come. `auth` None:
        the SDK's own lookup in the docker config; {} pushes anonymously."""
        name, _, tag = ref.rpartition(":")
        try:
            yield from self.api.push(name, tag=tag, stream=True, decode=True, auth_config=auth)
        except docker_errors.APIError as err:
            raise EngineError(f"the engine at {self.host} refused to push {ref}: {_reason(err)}") from err
        except (docker_errors.DockerException, requests.RequestException) as err:
            raise EngineError(f"the push of {ref} from {self.host} broke off: {_reason(err)}") from err

    def registry_login(self, registry: Optional[str]) -> Optional[tuple]:
        """The docker config's (user, password or identity token) for `registry` (None: Docker Hub),
        found as a push finds them (credential helpers too); None when it has none."""
        from docker import auth
        try:
            found = auth.load_config().resolve_authconfig(registry) or {}
        except (docker_errors.DockerException, OSError, ValueError):
            return None
        token = found.get("IdentityToken") or found.get("identitytoken")
        if token:
            return ("<token>", token)     # an OAuth refresh token (registry.Registry trades it)
        user, password = found.get("Username") or found.get("username"), found.get("Password") or found.get("password")
        return (user, password) if user and password else None

    def insecure_registry(self, registry: Optional[str]) -> bool:
        """Whether the engine talks plain HTTP to `registry` when HTTPS fails, as `--insecure-registry`
        and its 127.0.0.0/8 default make it. Raises EngineError."""
        import ipaddress
        import socket
        if registry is None:
            return False
        config = self.info().get("RegistryConfig") or {}
        named = (config.get("IndexConfigs") or {}).get(registry)
        if named is not None:
            return not named.get("Secure", True)
        host = registry.rsplit(":", 1)[0].strip("[]") if registry.count(":") <= 1 or registry.startswith("[") \
            else registry
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except OSError:
            return False
        nets = [ipaddress.ip_network(cidr) for cidr in config.get("InsecureRegistryCIDRs") or []]
        return any(ipaddress.ip_address(a.split("%")[0]) in net for a in addresses for net in nets
                   if ipaddress.ip_address(a.split("%")[0]).version == net.version)

    def cache_mounts(self) -> List[dict]:
        """BuildKit's cache mounts on this engine (`RUN --mount=type=cache`: the compile cache): each
        with Description, Size, LastUsedAt, InUse, as `docker system df -v` lists them. Raises
        EngineError."""
        try:
            found = self.api.df().get("BuildCache") or []
        except (docker_errors.DockerException, requests.RequestException) as err:
            raise EngineError(f"the engine at {self.host} did not list its build cache: {_reason(err)}") from err
        return [c for c in found if c.get("Type") == "exec.cachemount"]

    # --- verify -----------------------------------------------------------------------------------

    def machine(self) -> str:
        """The CPU the engine runs on, as it names it (x86_64, aarch64). Raises EngineError."""
        return str(self.info().get("Architecture") or "")

    def info(self) -> dict:
        """What `docker info` reports (runtimes, default runtime, version…). Raises EngineError."""
        try:
            return self.api.info()
        except (docker_errors.DockerException, requests.RequestException) as err:
            raise EngineError(f"the engine at {self.host} did not report its info: {_reason(err)}") from err

    def probe(self, image: str, command: List[str], *, env: Optional[List[str]] = None,
              devices: Iterable[str] = (), group_add: Iterable[str] = (), runtime: Optional[str] = None,
              timeout: int = 900) -> tuple:
        """Run `command` in a throwaway container (no network, entrypoint []) with the given host
        device nodes mapped (`/dev/x` at the same path, or `/dev/x:/dev/y`) and, when named, one
        of the engine's OCI runtimes;
        return (exit code, combined output). Raises EngineError when the container cannot be made,
        started or waited for."""
        host_config = self.api.create_host_config(
            network_mode="none", devices=[(d if ":" in d else f"{d}:{d}") + ":rwm" for d in devices] or None,
            group_add=list(group_add) or None, runtime=runtime,
        )
        try:
            cid = self.api.create_container(image, command=command, entrypoint=[], environment=env or [],
                                            host_config=host_config)["Id"]
        except docker_errors.ImageNotFound as err:
            raise EngineError(f"image {image} does not exist on {self.host}") from err
        except (docker_errors.DockerException, requests.RequestException) as err:
            raise EngineError(f"creating a check container from {image} on {self.host} failed: {_reason(err)}") from err
        return self._run_to_end(cid, f"the check container from {image}", timeout)

    def _run_to_end(self, cid: str, what: str, timeout: int, archive: Optional[bytes] = None) -> tuple:
        """Start the created container `cid` (after putting `archive` at its /), wait for it, and remove
        it; (exit code, its output). Raises EngineError naming `what`."""
        try:
            if archive is not None:
                self.api.put_archive(cid, "/", archive)
            self.api.start(cid)
            code = self.api.wait(cid, timeout=timeout)["StatusCode"]
            return code, self.api.logs(cid, stdout=True, stderr=True).decode("utf-8", "replace")
        except requests.exceptions.ReadTimeout as err:
            raise EngineError(f"{what} did not finish within {timeout}s") from err
        except (docker_errors.DockerException, requests.RequestException) as err:
            raise EngineError(f"{what} did not run: {_reason(err)}") from err
        finally:
            self.remove_container(cid)


def _reason(err: Exception) -> str:
    if isinstance(err, docker_errors.APIError):
        return err.explanation or str(err)
    text = str(err)
    # requests' messages carry the whole adapter chain; the root cause is what helps.
    for marker in ("Connection refused", "No such file or directory", "Name or service not known",
                   "timed out", "Permission denied", "certificate verify failed"):
        if marker in text:
            return marker
    return text.splitlines()[0][:200] if text else type(err).__name__
