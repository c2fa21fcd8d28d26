"""A camera's home network behind NAT, built for one test, and coturn on the host.

    camera netns ── veth ── router netns (MASQUERADE) ── veth ── host (server, coturn)
    10.R.1.2/30            10.R.1.1   10.R.0.2                  10.R.0.1/30

The router forwards only TCP to the server's HTTP port (signaling) and UDP/TCP to coturn's
port; everything else from the camera is dropped, and the host has no route back to the
camera's network. So the camera's host candidates are unreachable, its server-reflexive
path is dropped at the router, and a relayed candidate is the only way media can flow.
The router's firewall lives in its own namespace: nothing of the host's firewall changes.

`coturn` is Debian's (`turnserver`, scripts/setup.sh --test), started with a temporary
config (use-auth-secret: the REST API scheme the KOMI server mints credentials for) and
stopped after the test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness import free_port, wait_for_blocking

TURNSERVER = "turnserver"  # Debian's coturn package


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


def namespaces_forbidden() -> str | None:
    """Why network namespaces cannot be made here (not root, no CAP_NET_ADMIN, a
    container that forbids them), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN); CI runs the tests as root"
    if shutil.which("ip") is None:
        return None  # iproute2 missing is a broken setup, not a platform limit: fail later
    probe = f"komi-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"this machine forbids network namespaces: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _free_octet(first: int) -> int:
    """A second octet from `first` on whose 10.x.0.0/16 no route of this machine touches,
    so the lab never shadows a real network (or another test process's lab)."""
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True
    ).stdout
    for octet in [*range(first, 250), *range(100, first)]:
        if f"10.{octet}." not in routes:
            return octet
    raise RuntimeError("no free 10.x.0.0/16 for the NAT lab")


@dataclass
class NatLab:
    """The namespaces, links and router rules of one test; `close()` removes them all."""

    server_port: int  # the KOMI server's HTTP port, reachable from the camera (signaling)
    turn_port: int = field(default_factory=free_port)
    tag: str = field(default_factory=lambda: str(os.getpid() % 100000))

    def __post_init__(self) -> None:
        octet = _free_octet(100 + os.getpid() % 150)  # 10.<octet>.0.0/23: this lab's
        self.host_ip = f"10.{octet}.0.1"
        self.router_wan_ip = f"10.{octet}.0.2"
        self.router_lan_ip = f"10.{octet}.1.1"
        self.camera_ip = f"10.{octet}.1.2"
        self.router = f"komi-router-{self.tag}"
        self.camera = f"komi-camera-{self.tag}"
        self._host_link = f"kh{self.tag}"
        self._made: list[str] = []

    def open(self) -> NatLab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        router, camera = self.router, self.camera
        for namespace in (router, camera):
            _run("ip", "netns", "add", namespace)
            self._made.append(namespace)
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
        # host <-> router (the router's "internet" side)
        _run("ip", "link", "add", self._host_link, "type", "veth", "peer", "name", "wan",
             "netns", router)  # fmt: skip
        _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self._host_link)
        _run("ip", "link", "set", self._host_link, "up")
        _run("ip", "-n", router, "addr", "add", f"{self.router_wan_ip}/30", "dev", "wan")
        _run("ip", "-n", router, "link", "set", "wan", "up")
        # router <-> camera (the home network)
        _run("ip", "-n", router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0",
             "netns", camera)  # fmt: skip
        _run("ip", "-n", router, "addr", "add", f"{self.router_lan_ip}/30", "dev", "lan")
        _run("ip", "-n", router, "link", "set", "lan", "up")
        _run("ip", "-n", camera, "addr", "add", f"{self.camera_ip}/30", "dev", "eth0")
        _run("ip", "-n", camera, "link", "set", "eth0", "up")
        _run("ip", "-n", camera, "route", "add", "default", "via", self.router_lan_ip)
        # the router: NAT out of the home network, and only signaling and TURN pass
        in_router = ("ip", "netns", "exec", router)
        _run(*in_router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _run(*in_router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan",
             "-j", "MASQUERADE")  # fmt: skip
        forward = (*in_router, "iptables", "-A", "FORWARD")
        _run(*forward, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
        _run(*forward, "-i", "lan", "-d", self.host_ip, "-p", "tcp",
             "--dport", str(self.server_port), "-j", "ACCEPT")  # fmt: skip
        for protocol in ("udp", "tcp"):
            _run(*forward, "-i", "lan", "-d", self.host_ip, "-p", protocol,
                 "--dport", str(self.turn_port), "-j", "ACCEPT")  # fmt: skip
        _run(*in_router, "iptables", "-P", "FORWARD", "DROP")

    def in_camera(self, *command: str) -> list[str]:
        """`command` run inside the camera's home network."""
        return ["ip", "netns", "exec", self.camera, *command]

    def close(self) -> None:
        """Deleting a namespace deletes its links (and the host's end of each veth) and its
        firewall; the host link is deleted too in case its namespace was never made."""
        subprocess.run(["ip", "link", "del", self._host_link], capture_output=True)
        for namespace in reversed(self._made):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        self._made.clear()


def host_addresses() -> list[str]:
    """This machine's IPv4 addresses but loopback: where the KOMI server's ICE candidates
    are, so the only peers coturn may relay to (as README's "TURN" config does)."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], check=True, capture_output=True, text=True
    ).stdout
    found = re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", shown)
    return [address for address in found if not address.startswith("127.")]


class Coturn:
    """Debian's coturn on the host's end of the lab link, with a temporary config like
    README's: the REST API's shared secret, relays from the host address to `peers` only
    (the server's addresses), its log in `log`."""

    def __init__(
        self, workdir: Path, listen_ip: str, port: int, secret: str, peers: list[str]
    ) -> None:
        self.log = workdir / "turnserver.log"
        self.config = workdir / "turnserver.conf"
        low = 40000 + (port % 200) * 100  # a relay port range of its own
        self.config.write_text(
            "\n".join(
                [
                    f"listening-ip={listen_ip}",
                    f"listening-port={port}",
                    f"relay-ip={listen_ip}",
                    f"min-port={low}",
                    f"max-port={low + 99}",
                    "use-auth-secret",
                    f"static-auth-secret={secret}",
                    "realm=komi.test",
                    "fingerprint",
                    "no-tls",
                    "no-dtls",
                    "no-cli",
                    "no-multicast-peers",
                    "denied-peer-ip=0.0.0.0-255.255.255.255",
                    *(f"allowed-peer-ip={peer}" for peer in peers),
                    "verbose",
                    "simple-log",
                    f"log-file={self.log}",
                    f"userdb={workdir / 'turndb'}",
                    f"pidfile={workdir / 'turnserver.pid'}",
                    "",
                ]
            )
        )
        self.config.chmod(0o600)  # it holds the secret
        self.process = subprocess.Popen(
            [TURNSERVER, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        self.address = (listen_ip, port)

    def log_text(self) -> str:
        # simple-log writes log-file as given; some builds add a date to the name
        logs = sorted(self.log.parent.glob("turnserver*.log"))
        return "".join(p.read_text(errors="replace") for p in logs)

    def wait_listening(self, timeout: float = 20.0) -> None:
        def listening() -> bool:
            assert self.process.poll() is None, f"turnserver exited:\n{self.log_text()}"
            return bool(re.search(r"listener opened on\s*:?\s*" + re.escape(self.address[0]),
                                  self.log_text()))  # fmt: skip

        wait_for_blocking(listening, timeout, lambda: f"coturn listening\n{self.log_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
