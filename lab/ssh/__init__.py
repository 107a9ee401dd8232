"""Simulated vendor CLIs over SSH (Huawei VRP, H3C Comware, Cisco IOS) that netmiko drives like devices."""

from lab.ssh.server import DeviceServer, SshLab, start_ssh_servers

__all__ = ["DeviceServer", "SshLab", "start_ssh_servers"]
