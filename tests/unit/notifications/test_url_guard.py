"""The SSRF guard: which webhook URLs and addresses are acceptable."""
import ipaddress

import pytest

from services.notifications import url_guard


def resolver(answers):
    def resolve(host, port):
        value = answers[host]
        if isinstance(value, Exception):
            raise value
        return value
    return resolve


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "10.0.0.1", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "fc00::1",
    "100.64.0.1", "100.100.100.200", "0.0.0.0", "::",  # noqa: S104 "224.0.0.1", "ff02::1",
    "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "2002:7f00:1::", "2002:a00:1::", "64:ff9b::a00:1",
])
def test_non_public_addresses_are_refused(address):
    assert not url_guard.address_allowed(ipaddress.ip_address(address), allow_loopback=False)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111",
                                     "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert url_guard.address_allowed(ipaddress.ip_address(address), allow_loopback=False)


def test_loopback_only_with_the_local_setting_and_nothing_else_private():
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert url_guard.address_allowed(ipaddress.ip_address(address), allow_loopback=True)
    for address in ("10.0.0.1", "169.254.169.254", "192.168.0.1"):
        assert not url_guard.address_allowed(ipaddress.ip_address(address), allow_loopback=True)


@pytest.mark.parametrize(("url", "code"), [
    ("", "invalid_url"), ("not a url", "invalid_url"), ("https://", "invalid_url"),
    ("ftp://example.com/", "invalid_scheme"), ("javascript:alert(1)", "invalid_scheme"),
    ("http://example.com/hook", "https_required"),
    ("https://user:secret@example.com/", "invalid_url"),
    ("https://example.com:99999/", "invalid_url"), ("https://exa mple.com/", "invalid_url"),
    ("https://example.com/\r\nX: y", "invalid_url"), ("https://" + "a" * 2050, "invalid_url"),
])
def test_malformed_or_insecure_urls(url, code):
    with pytest.raises(url_guard.UnsafeUrl) as refused:
        url_guard.parse(url, allow_loopback=False)
    assert refused.value.code == code


def test_target_keeps_path_and_query_and_default_ports():
    target = url_guard.parse("https://Hooks.Example.com/in/portico?x=1#frag",
                             allow_loopback=False)
    assert target == url_guard.Target("https", "hooks.example.com", 443, "/in/portico?x=1")
    local = url_guard.parse("http://127.0.0.1:8080", allow_loopback=True)
    assert (local.scheme, local.port, local.path) == ("http", 8080, "/")


def test_every_resolved_address_must_be_public():
    answers = {"ok.example": ["93.184.216.34"], "mixed.example": ["93.184.216.34", "10.0.0.5"],
               "metadata.example": ["169.254.169.254"], "gone.example": OSError("NXDOMAIN"),
               "six.example": ["2606:4700::1111", "fe80::1%eth0"]}
    _, addresses = url_guard.check("https://ok.example/", allow_loopback=False,
                                   resolver=resolver(answers))
    assert addresses == [ipaddress.ip_address("93.184.216.34")]
    for host, code in (("mixed.example", "forbidden_address"),
                       ("metadata.example", "forbidden_address"),
                       ("gone.example", "unresolvable"), ("six.example", "forbidden_address")):
        with pytest.raises(url_guard.UnsafeUrl) as refused:
            url_guard.check(f"https://{host}/", allow_loopback=False, resolver=resolver(answers))
        assert refused.value.code == code, host


def test_rebinding_is_caught_by_checking_again():
    answers = {"rebind.example": ["93.184.216.34"]}
    url_guard.check("https://rebind.example/", allow_loopback=False, resolver=resolver(answers))
    answers["rebind.example"] = ["127.0.0.1"]  # the attacker's DNS changes its answer
    with pytest.raises(url_guard.UnsafeUrl):
        url_guard.check("https://rebind.example/", allow_loopback=False,
                        resolver=resolver(answers))


def test_ip_literals_are_checked_without_dns():
    def no_dns(host, port):
        raise AssertionError("no lookup for a literal")
    with pytest.raises(url_guard.UnsafeUrl):
        url_guard.check("https://[::1]/", allow_loopback=False, resolver=no_dns)
    url_guard.check("https://8.8.8.8/", allow_loopback=False, resolver=no_dns)


@pytest.mark.parametrize(("setting", "public_url", "allowed"), [
    ("auto", "http://127.0.0.1:8000", True), ("auto", "http://localhost:8000", True),
    ("auto", "https://portico.example.com", False), ("auto", "http://127.0.0.1.example", True),
    ("true", "https://portico.example.com", True), ("false", "http://127.0.0.1:8000", False),
    ("", "http://127.0.0.1:8000", False),
])
def test_loopback_setting(setting, public_url, allowed):
    config = {"WEBHOOKS_ALLOW_LOOPBACK": setting, "PUBLIC_URL": public_url}
    assert url_guard.loopback_allowed(config) is allowed
