"""The lab's vendor CLI without sockets: profiles, command resolution, rendering and line editing."""

from __future__ import annotations

import pytest

from lab.ssh.cli import Interpreter, LineEditor
from lab.ssh.profiles import ProfileError, available_vendors, load_profile, parse_profile
from lab.ssh.render import ChangeClock, context
from lab.state import LabDevice, LabInterface

NOW = 1_700_000_000.0


def _device(vendor: str, role: str = "core_switch", ha_role: str | None = None) -> LabDevice:
    return LabDevice(
        name="dev-1",
        site="ncc",
        role=role,
        vendor=vendor,
        model="",
        address="127.21.200.1",
        snmp_port=161,
        ssh_port=0,
        boot_time=NOW - 3 * 86400 - 3600 * 5 - 60 * 7,
        interfaces=[
            LabInterface(1, "GigabitEthernet1/0/1", alias="to-core-1", in_bps=250e6),
            LabInterface(2, "GigabitEthernet1/0/2", oper_up=False),
            LabInterface(3, "GigabitEthernet1/0/3", admin_up=False, oper_up=False),
        ],
        ha_role=ha_role,
    )


def _interp(device: LabDevice, now: float = NOW) -> Interpreter:
    profile = load_profile(device.vendor)
    assert profile is not None
    clock = ChangeClock.start(device)
    return Interpreter(profile, device.role, lambda: context(device, profile, clock, now, 1))


def test_every_vendor_command_renders_for_every_role_and_ha_state() -> None:
    """Generic data test: a new vendor file or command is covered without new test code."""
    vendors = available_vendors()
    assert {"huawei", "h3c", "cisco"} <= set(vendors)
    for vendor in vendors:
        profile = load_profile(vendor)
        assert profile is not None
        for role, ha_role in [("core_switch", None), ("firewall", "active"), ("firewall", "standby")]:
            device = _device(vendor, role, ha_role)
            device.config_extra = ["ntp server 10.0.0.1"]
            interp = _interp(device)
            for command in profile.commands_for(role):
                line = " ".join(w.text if not w.is_param else str(w.low or 0) for w in command.words)
                reply = interp.execute(line)
                assert reply.close == command.exits, (vendor, line)
                assert "Unrecognized" not in reply.text and "Invalid input" not in reply.text, (vendor, line)


@pytest.mark.parametrize(
    ("vendor", "line", "expect"),
    [
        ("huawei", "dis int br", "GigabitEthernet1/0/2        down"),
        ("huawei", "DISPLAY Interface BRIEF", "GigabitEthernet1/0/3        *down"),
        ("huawei", "display interface brief", "25%"),
        ("h3c", "dis int b", "GE1/0/3              ADM"),
        ("h3c", "display interface brief", "GE1/0/1              UP   1G(a)"),
        (
            "cisco",
            "sh ip int br",
            "GigabitEthernet1/0/3   unassigned      YES unset  administratively down down",
        ),
        ("huawei", "display version", "uptime is 0 week, 3 day, 5 hour, 7 minute"),
        ("cisco", "show version", "dev-1 uptime is 3 days, 5 hours, 7 minutes"),
    ],
)
def test_abbreviated_commands_render_device_state(vendor: str, line: str, expect: str) -> None:
    assert expect in _interp(_device(vendor)).execute(line).text


def test_errors_put_the_caret_under_the_bad_word() -> None:
    interp = _interp(_device("huawei"))
    text = interp.execute("display interfaec brief").text
    caret, message = text.splitlines()[:2]
    assert message == "Error: Unrecognized command found at '^' position."
    assert caret.index("^") == len("<dev-1>display ")
    assert "Incomplete command" in interp.execute("display").text
    # `screen` starts both screen-length and screen-width.
    ambiguous = interp.execute("screen").text
    assert ambiguous.splitlines()[1] == "Error: Ambiguous command found at '^' position."
    cisco = _interp(_device("cisco")).execute("show ip route").text
    assert "% Invalid input detected at '^' marker." in cisco
    assert cisco.splitlines()[0].index("^") == len("dev-1#show ip ")


def test_parameters_and_unique_prefixes() -> None:
    interp = _interp(_device("cisco"))
    assert interp.execute("ter len 0").text == ""
    assert "Invalid input" in interp.execute("terminal length 9999").text  # out of range
    assert "Invalid input" in interp.execute("terminal length zero").text
    huawei = _interp(_device("huawei")).execute("screen-length 0 t").text
    assert huawei.startswith("Info: The configuration takes effect")


def test_pipe_filters_are_substring_matches_not_regexes() -> None:
    interp = _interp(_device("huawei"))
    out = interp.execute("display current-configuration | include snmp-agent community").text
    assert out.startswith("snmp-agent community read cipher %^%#") and out.count("\n") == 1
    # A regex that would backtrack for ages is just a string that matches nothing.
    assert interp.execute("display current-configuration | include (a+)+$").text == ""
    begin = interp.execute("display current-configuration | begin user-interface").text
    assert begin.startswith("user-interface con 0")
    assert "Unrecognized" in interp.execute("display version | frobnicate x").text


def test_shell_metacharacters_are_just_unknown_words() -> None:
    interp = _interp(_device("cisco"))
    for line in ["show version; id", "$(id)", "`id`", "show version && reboot"]:
        assert "% Invalid input detected" in interp.execute(line).text


def test_config_text_cannot_inject_lines_or_escape_sequences() -> None:
    device = _device("huawei")
    device.config_extra = ["acl 3000\nrule permit ip", "\x1b[2Jclear"]
    out = _interp(device).execute("display current-configuration").text
    assert "acl 3000?rule permit ip" in out
    assert "\x1b" not in out


def test_state_is_read_at_each_command_and_changes_are_stamped() -> None:
    device = _device("huawei", "firewall", "active")
    profile = load_profile("huawei")
    assert profile is not None
    clock = ChangeClock.start(device)
    now = [NOW]
    interp = Interpreter(profile, "firewall", lambda: context(device, profile, clock, now[0], 1))
    before = interp.execute("display current-configuration").text
    assert "updated at 2023-11-12 01:06:20+08:00" in before  # boot time, CST
    assert interp.prompt() == "HRP_M<dev-1>"
    device.config_revision += 1
    device.config_extra.append("ip route-static 0.0.0.0 0 10.1.1.1")
    device.ha_role = "standby"
    now[0] = NOW + 60
    after = interp.execute("display current-configuration").text
    assert "ip route-static 0.0.0.0 0 10.1.1.1" in after
    assert "updated at 2023-11-15 06:14:20+08:00" in after
    assert "1000000001" in interp.execute("display configuration commit list").text
    assert interp.prompt() == "HRP_S<dev-1>"
    assert "Role: standby, peer: active" in interp.execute("display hrp state").text
    assert "Stable time: 0 days, 0 hours, 1 minutes" in _later(interp, now, 60)


def _later(interp: Interpreter, now: list[float], seconds: float) -> str:
    now[0] += seconds
    return interp.execute("display hrp state").text


def test_firewall_commands_only_on_firewalls() -> None:
    assert "Unrecognized" in _interp(_device("huawei")).execute("display hrp state").text
    assert "Invalid input" in _interp(_device("cisco")).execute("show failover").text
    standby = _interp(_device("cisco", "firewall", "standby")).execute("show failover").text
    assert "This host: Primary - Standby Ready" in standby


def test_secrets_in_config_look_like_vendor_hashes_and_are_stable() -> None:
    a = _interp(_device("cisco")).execute("show running-config").text
    b = _interp(_device("cisco"), now=NOW + 3600).execute("show running-config").text
    secret = [ln for ln in a.splitlines() if ln.startswith("enable secret 9 $9$")]
    assert secret and secret[0] in b
    assert "snmp-server community " in a
    huawei = _interp(_device("huawei")).execute("display current-configuration").text
    assert "password irreversible-cipher $1a$" in huawei


def test_line_editor_echo_backspace_interrupt_and_escape_sequences() -> None:
    ed = LineEditor(max_line=10)
    assert ed.feed("disx\x7fp\r\n") == [("echo", "disx\b \bp"), ("line", "disp")]
    assert ed.feed("ab\x03") == [("echo", "ab"), ("interrupt", "")]
    assert ed.feed("\x1b[Aq\n") == [("echo", "q"), ("line", "q")]
    assert ed.feed("\r") == [("line", "")]
    assert ed.feed("\n") == []  # LF of the CR LF pair split across reads
    assert ed.feed("\n") == [("line", "")]
    assert ed.feed("x" * 20 + "\r") == [("echo", "x" * 10), ("line", "x" * 10)]
    assert ed.feed("\t\x04ok\x15") == [("echo", "ok\b \b\b \b")]


def test_bad_profile_is_rejected() -> None:
    with pytest.raises(ProfileError):
        parse_profile({"vendor": "x"}, "x.yaml")
    with pytest.raises(ProfileError):
        parse_profile(
            {
                "vendor": "x",
                "netmiko_device_type": "x",
                "ssh_version": "X",
                "prompt": ">",
                "errors": {"unrecognized": "", "incomplete": "", "ambiguous": ""},
                "commands": {"show": {"output": "x"}},
                "pipe_filters": {"grep": "regex"},
            },
            "x.yaml",
        )
    assert load_profile("../etc/passwd") is None
    assert load_profile("sangfor") is None
