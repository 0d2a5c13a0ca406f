"""The SSRF guard: forbidden addresses are refused where the socket would be opened, after DNS,
and no connection is made. DNS is mocked at its seam (safehttp.resolve); for non-loopback targets
the socket connect is replaced by a recorder too, so a broken guard could never send a packet."""

from __future__ import annotations

import contextlib
import ipaddress
from unittest import mock

import pytest

from monitor.models import AlertRule, Camera, Delivery
from monitor.notify import relay, safehttp
from tests.monitor.notify.conftest import WebhookReceiver, make_incident, outbox, webhook_channel

FORBIDDEN = [
    "127.0.0.1",
    "::1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",  # noqa: S104  (an address under test, not a bind)
    "224.0.0.251",
    "240.0.0.1",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
]
PUBLIC = ["93.184.216.34", "2606:4700:4700::1111", "64:ff9b::5db8:d822", "2002:5db8:d822::"]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert safehttp.refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_including_wrapped_public_ipv4_are_allowed(address: str) -> None:
    assert safehttp.refusal(ipaddress.ip_address(address)) is None


@pytest.fixture
def guarded(settings, receiver: WebhookReceiver) -> WebhookReceiver:
    settings.ARGUS_WEBHOOK_ALLOW_PRIVATE = False  # the receiver fixture turned it on
    return receiver


@pytest.fixture
def connects():
    """Records socket connects instead of making them."""
    with mock.patch("urllib3.util.connection.create_connection", side_effect=ConnectionRefusedError) as spy:
        yield spy


def send(camera: Camera, rule: AlertRule, url: str) -> Delivery:
    delivery = outbox(make_incident(camera, rule), webhook_channel(camera, url))
    relay.run_once(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    return delivery


def resolving_to(*addresses: str):
    return mock.patch.object(safehttp, "resolve", return_value=[ipaddress.ip_address(a) for a in addresses])


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "gate-hooks.example.test"])
def test_a_loopback_target_is_refused_before_any_connection(
    camera: Camera, rule: AlertRule, guarded: WebhookReceiver, host: str
) -> None:
    port = guarded.url.split(":")[2].split("/")[0]
    with resolving_to("127.0.0.1") if host.endswith(".test") else contextlib.nullcontext():
        delivery = send(camera, rule, f"http://{host}:{port}/hook")
    assert delivery.status == Delivery.Status.DEAD
    assert delivery.last_error.startswith("refused:") and "loopback" in delivery.last_error
    assert guarded.connections == 0


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "169.254.169.254", "100.64.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "fd00::1"]
)
def test_a_name_resolving_to_a_forbidden_address_is_refused_at_connect_time(
    camera: Camera, rule: AlertRule, guarded: WebhookReceiver, connects: mock.Mock, address: str
) -> None:
    with resolving_to(address) as resolver:
        delivery = send(camera, rule, "https://hooks.example.test/argus")
    resolver.assert_called_once_with("hooks.example.test", 443)
    assert delivery.status == Delivery.Status.DEAD and "refused" in delivery.last_error
    connects.assert_not_called()


def test_only_the_vetted_address_is_connected_to_so_rebinding_cannot_swap_it(
    camera: Camera, rule: AlertRule, guarded: WebhookReceiver, connects: mock.Mock
) -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a rebinding DNS server: public first, then loopback
    fake = lambda host, port: [ipaddress.ip_address(a) for a in next(answers)]  # noqa: E731
    with mock.patch.object(safehttp, "resolve", side_effect=fake):
        delivery = send(camera, rule, "http://rebind.example.test/hook")
    assert [c.args[0] for c in connects.call_args_list] == [("93.184.216.34", 80)]
    assert delivery.status == Delivery.Status.FAILED  # the recorder refused the connection: retried


def test_a_name_with_public_and_private_addresses_connects_only_to_the_public_one(
    camera: Camera, rule: AlertRule, guarded: WebhookReceiver, connects: mock.Mock
) -> None:
    with resolving_to("127.0.0.1", "93.184.216.34", "10.0.0.1"):
        send(camera, rule, "http://mixed.example.test/hook")
    assert [c.args[0] for c in connects.call_args_list] == [("93.184.216.34", 80)]


def test_with_private_targets_allowed_the_name_reaches_the_receiver_with_its_host_header(
    camera: Camera, rule: AlertRule, receiver: WebhookReceiver
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    with resolving_to("127.0.0.1"):
        delivery = send(camera, rule, f"http://gate-hooks.example.test:{port}/hook")
    assert delivery.status == Delivery.Status.DELIVERED
    assert receiver.received[0].headers["host"] == f"gate-hooks.example.test:{port}"
