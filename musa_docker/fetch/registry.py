"""A registry's HTTP API (the OCI distribution spec), for what the engine's push cannot do: read a
manifest, upload blobs and put manifests, so that an image's SBOM attestation can be attached
beside the image the engine pushed (check/attest.py).

It talks as the engine does: HTTPS, or plain HTTP for a registry the engine treats as insecure
(`--insecure-registry`, 127.0.0.0/8) once HTTPS fails; the docker config's credentials, as Basic
auth or for a Bearer token from the registry's token service (the `WWW-Authenticate` challenge),
scoped to the one repository. Credentials and tokens are never printed. Raises PushError.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import requests

from .. import __version__
from ..errors import PushError

DOCKER_HUB = "registry-1.docker.io"
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
TIMEOUT = 60


@dataclass
class Registry:
    """One repository of one registry: `host` as a reference names it (None: Docker Hub), `name` the
    repository path (`library/x` on Docker Hub), `credentials` (user, password) or None; the user
    `<token>` marks the password as an identity token (an OAuth refresh token), as docker's config does."""

    host: Optional[str]
    name: str
    credentials: Optional[Tuple[str, str]] = field(default=None, repr=False)
    insecure: bool = False
    _base: Optional[str] = field(default=None, repr=False)
    _token: Optional[str] = field(default=None, repr=False)
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self):
        self._session.headers["User-Agent"] = f"musa-docker/{__version__}"
        if self.host is None and "/" not in self.name:
            self.name = f"library/{self.name}"

    @property
    def _login_hint(self) -> str:
        return f"log in with `docker login{' ' + self.host if self.host else ''}` and try again"

    @property
    def shown(self) -> str:
        return f"{self.host or 'Docker Hub'}/{self.name}"

    # --- the API ---------------------------------------------------------------------------------

    def manifest(self, reference: str) -> Tuple[str, str, bytes]:
        """The manifest `reference` (tag or digest) names: (media type, digest, bytes)."""
        resp = self._call("GET", f"manifests/{reference}", headers={"Accept": ", ".join(MANIFEST_TYPES)})
        body = resp.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        kind = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return kind, digest, body

    def blob(self, digest: str) -> bytes:
        """The blob `digest` names, checked against it."""
        body = self._call("GET", f"blobs/{digest}").content
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise PushError(f"the registry {self.shown} sent other bytes for the blob {digest}")
        return body

    def put_blob(self, data: bytes) -> str:
        """Upload `data` unless the registry has it; its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self._call("HEAD", f"blobs/{digest}", ok=(200, 404)).status_code == 200:
            return digest
        started = self._call("POST", "blobs/uploads/", ok=(202,))
        location = started.headers.get("Location")
        if not location:
            raise PushError(f"{self.shown} started an upload without saying where to send it")
        url = requests.compat.urljoin(self._root() + "/", location)
        self._call("PUT", url, params={"digest": digest}, data=data, ok=(201,),
                   headers={"Content-Type": "application/octet-stream"})
        return digest

    def put_manifest(self, reference: str, media_type: str, body: bytes) -> str:
        """Store `body` as the manifest `reference` (tag or digest); its digest."""
        self._call("PUT", f"manifests/{reference}", data=body, ok=(201,), headers={"Content-Type": media_type})
        return "sha256:" + hashlib.sha256(body).hexdigest()

    # --- HTTP ------------------------------------------------------------------------------------

    def _root(self) -> str:
        if self._base is None:
            self._base = self._pick_scheme()
        return self._base

    def _pick_scheme(self) -> str:
        host = self.host or DOCKER_HUB
        try:
            self._session.get(f"https://{host}/v2/", timeout=TIMEOUT, verify=not self.insecure)
            return f"https://{host}"
        except requests.RequestException as err:
            if not self.insecure:
                raise PushError(f"cannot reach the registry {host} over HTTPS", _words(err)) from None
        return f"http://{host}"

    def _call(self, method: str, path: str, ok=(200,), headers: Optional[Dict[str, str]] = None,
              **kwargs) -> requests.Response:
        url = path if "://" in path else f"{self._root()}/v2/{self.name}/{path}"
        headers = dict(headers or {})
        for attempt in range(2):
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            auth = self.credentials if not self._token and self._basic else None
            try:
                resp = self._session.request(method, url, headers=headers, auth=auth, timeout=TIMEOUT,
                                             verify=not self.insecure, **kwargs)
            except requests.RequestException as err:
                raise PushError(f"the registry {self.shown} did not answer {method} {_path(url)}",
                                _words(err)) from None
            if resp.status_code == 401 and attempt == 0 and self._authorize(resp):
                continue
            if resp.status_code in (401, 403) and resp.status_code not in ok:
                raise PushError(f"the registry {self.shown} refused {method} {_path(url)} (HTTP {resp.status_code}) "
                                + ("with the credentials of the docker config" if self.credentials
                                   else "without credentials"),
                                self._login_hint)
            if resp.status_code not in ok:
                raise PushError(f"the registry {self.shown} refused {method} {_path(url)} "
                                f"(HTTP {resp.status_code})", _errors(resp))
            return resp
        raise AssertionError("unreachable: the second attempt returns or raises")

    _basic = False

    def _authorize(self, resp: requests.Response) -> bool:
        """Answer a 401's challenge once: Basic with the credentials, or a Bearer token for them."""
        challenge = resp.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic" and self.credentials:
            self._basic = True
            return True
        if scheme != "bearer":
            return False
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            return False
        params["scope"] = f"repository:{self.name}:pull,push"
        try:
            if self.credentials and self.credentials[0] == "<token>":
                got = self._session.post(realm, data={**params, "grant_type": "refresh_token", "client_id": "musa-docker",
                                                      "refresh_token": self.credentials[1]},
                                         timeout=TIMEOUT, verify=not self.insecure)
            else:
                got = self._session.get(realm, params=params, auth=self.credentials, timeout=TIMEOUT,
                                        verify=not self.insecure)
        except requests.RequestException as err:
            raise PushError(f"the token service of {self.shown} did not answer", _words(err)) from None
        if got.status_code != 200:
            raise PushError(f"the token service of {self.shown} refused a token to push (HTTP {got.status_code})",
                            self._login_hint)
        body = got.json() if got.content else {}
        self._token = body.get("token") or body.get("access_token")
        return bool(self._token)


def _path(url: str) -> str:
    """A URL as an error may show it: the path only (an upload URL's query may hold a state token)."""
    return requests.utils.urlparse(url).path


def _words(err: BaseException) -> str:
    text = str(err)
    return text.split(" (Caused by ")[-1].rstrip(")") if "Caused by" in text else text


def _errors(resp: requests.Response) -> str:
    """The registry's own words: the `errors` of its JSON body."""
    try:
        errors = resp.json().get("errors") or []
        return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)
    except ValueError:
        return resp.text[:200].strip()
