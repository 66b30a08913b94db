from __future__ import annotations

import pytest

from musa_docker.errors import ConfigError
from musa_docker.values.locations import Location, parse_location, redact, strip_credentials

SHA = "0123456789abcdef" * 4


def test_https_url_with_sha256():
    loc = parse_location(f"https://example.com/musa/musa_toolkits_1.4.0.tar.gz#sha256={SHA.upper()}")
    assert loc.scheme == "https"
    assert loc.url == "https://example.com/musa/musa_toolkits_1.4.0.tar.gz"
    assert loc.sha256 == SHA
    assert loc.filename == "musa_toolkits_1.4.0.tar.gz"
    assert loc.display == "https://example.com/musa/musa_toolkits_1.4.0.tar.gz"


def test_raw_is_kept_exactly_and_whitespace_ignored():
    text = "  http://example.com/a.tar \n"
    loc = parse_location(text)
    assert loc.raw == text
    assert loc.url == "http://example.com/a.tar"
    assert loc.scheme == "http"


def test_filename_is_unquoted_and_defaults_to_download():
    assert parse_location("https://h/dir/a%20b.tar?x=1").filename == "a b.tar"
    assert parse_location("https://h/").filename == "download"
    assert parse_location("https://h").filename == "download"
    # an encoded slash or a control character must not escape the cache entry or break a line
    assert parse_location("https://h/x/..%2F..%2Fetc%2Fpasswd").filename == ".._.._etc_passwd"
    assert parse_location("https://h/a%0Ab.tar").filename == "a_b.tar"


def test_credentials_are_kept_for_fetching_but_never_displayed():
    text = "https://alice:p%40ss@example.com/a.tar.gz?token=TOK123&x=1&X-Amz-Signature=SIG456#sha256=" + SHA
    loc = parse_location(text)
    assert loc.url == "https://alice:p%40ss@example.com/a.tar.gz?token=TOK123&x=1&X-Amz-Signature=SIG456"
    assert loc.display == "https://***@example.com/a.tar.gz?token=***&x=1&X-Amz-Signature=***"
    for secret in ("alice", "p%40ss", "TOK123", "SIG456"):
        assert secret not in repr(loc)
        assert secret not in str(loc)
        assert secret not in loc.display


@pytest.mark.parametrize(
    "param",
    ["token", "access_token", "private_token", "key", "api_key", "AWSAccessKeyId", "sig", "signature",
     "password", "secret", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Signature", "auth"],
)
def test_secret_query_params_are_masked(param):
    assert redact(f"https://h/f?{param}=VALUE&keep=1") == f"https://h/f?{param}=***&keep=1"


def test_plain_query_params_stay():
    assert redact("https://h/f?version=1.4.0&arch=x86_64") == "https://h/f?version=1.4.0&arch=x86_64"


def test_redact_in_free_text_and_requests_messages():
    text = (
        "HTTPSConnectionPool(host='h', port=443): Max retries exceeded with url: /f.tar?token=abc&v=1 "
        "(Caused by x); see https://bob:hunter2@mirror.example/f.tar and 'http://tok@h/x'"
    )
    out = redact(text)
    assert "abc" not in out and "hunter2" not in out and "bob" not in out and "tok@" not in out
    assert "/f.tar?token=***&v=1" in out
    assert "https://***@mirror.example/f.tar" in out
    assert "'http://***@h/x'" in out


def test_password_with_raw_at_sign_is_fully_hidden():
    loc = parse_location("https://user:p@ss@host.example/f.tar")
    assert loc.display == "https://***@host.example/f.tar"
    assert "ss@" not in loc.display


def test_strip_credentials_ignores_userinfo_and_secrets_only():
    a = strip_credentials("https://u:one@Example.com/f.tar?token=1&v=2")
    b = strip_credentials("https://x:two@example.com/f.tar?token=2&v=2")
    c = strip_credentials("https://example.com/f.tar?v=2")
    assert a == b == c == "https://example.com/f.tar?v=2"
    assert strip_credentials("https://example.com/f.tar?v=3") != c


def test_local_paths_are_kept_as_given():
    abs_loc = parse_location(f"/data/musa toolkits.tar.gz#sha256={SHA}")
    assert abs_loc.scheme == "file"
    assert abs_loc.url == "file:///data/musa%20toolkits.tar.gz"
    assert abs_loc.local_path == "/data/musa toolkits.tar.gz"
    assert abs_loc.display == "/data/musa toolkits.tar.gz"
    assert abs_loc.sha256 == SHA

    rel = parse_location("artifacts/mudnn.tar")
    assert rel.url == "file:artifacts/mudnn.tar"
    assert rel.local_path == "artifacts/mudnn.tar"
    assert rel.filename == "mudnn.tar"

    assert parse_location("~/mudnn.tar").local_path == "~/mudnn.tar"
    # a colon or a '#' inside a file name is not a scheme or a hash
    assert parse_location("a:b.tar").local_path == "a:b.tar"
    assert parse_location("build#3.tar").local_path == "build#3.tar"


def test_file_urls():
    loc = parse_location("file:///srv/a%20b.tar#sha256=" + SHA)
    assert (loc.scheme, loc.url, loc.local_path, loc.filename) == ("file", "file:///srv/a%20b.tar", "/srv/a b.tar", "a b.tar")
    assert parse_location("file://localhost/srv/x.tar").local_path == "/srv/x.tar"
    with pytest.raises(ConfigError, match="must be local"):
        parse_location("file://fileserver/srv/x.tar", what="--mudnn-url")


def test_location_is_frozen():
    loc = parse_location("https://h/f")
    with pytest.raises(AttributeError):
        loc.url = "x"  # type: ignore[misc]
    assert isinstance(loc, Location)


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_is_refused_naming_the_flag(text):
    with pytest.raises(ConfigError, match=r"--musa-url is empty"):
        parse_location(text, what="--musa-url")


def test_unsupported_scheme_names_it_and_lists_supported():
    with pytest.raises(ConfigError) as info:
        parse_location("ftp://user:secret@host/f.tar", what="--mccl-url")
    msg = str(info.value)
    assert "--mccl-url" in msg and "'ftp://'" in msg
    assert "http://, https://, file:// or a local path" in msg
    assert "secret" not in msg


@pytest.mark.parametrize("bad", ["abc", SHA[:-1], SHA + "0", "g" * 64, ""])
def test_bad_sha256_is_refused(bad):
    with pytest.raises(ConfigError) as info:
        parse_location(f"https://h/f.tar?token=SECRET#sha256={bad}", what="--mudnn-url")
    msg = str(info.value)
    assert "--mudnn-url" in msg and "64 hex digits" in msg and repr(bad) in msg
    assert "SECRET" not in msg


def test_other_hash_fragments_are_refused_not_ignored():
    with pytest.raises(ConfigError, match="only '#sha256=<64 hex digits>'"):
        parse_location("https://h/f.tar#md5=0123")
    with pytest.raises(ConfigError, match="'#sha265='"):
        parse_location("https://h/f.tar#sha265=" + SHA)


def test_plain_url_fragment_is_dropped():
    loc = parse_location("https://h/f.tar#readme")
    assert loc.url == "https://h/f.tar" and loc.sha256 is None


@pytest.mark.parametrize("text, match", [("https:///f.tar", "no host"), ("http://h:99999999/f", "bad port")])
def test_malformed_http_urls(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_location(text)


@pytest.mark.parametrize("text", ["http://[::1/x.tar.gz", "https://exa mple.com/x.tar", "http://h/x\n.tar"])
def test_a_url_that_does_not_parse_is_a_config_error(text):
    with pytest.raises(ConfigError) as info:
        parse_location(text, what="--musa-url")
    assert str(info.value).startswith("--musa-url: ")
