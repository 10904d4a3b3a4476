"""End to end: real DHCP servers and a real DHCP client in network namespaces this test makes.

Two namespaces joined by a veth pair: the server side runs provisor and a DHCP server (ISC
dhcpd, or Kea with its run_script hook and the classes ``provisor dhcp config`` wrote); the
client side runs dhclient with a TestPhone MAC. The server's lease hook runs ``provisor dhcp
notify``, and provisor knows the phone before it fetches any file.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provisor.service import Provisor
from provisor.settings import load_settings
from tests.conftest import TEST_PLUGINS
from tests.support.waiting import until

DHCPD = shutil.which("dhcpd") or "/usr/sbin/dhcpd"
DHCLIENT = shutil.which("dhclient") or "/usr/sbin/dhclient"
KEA = shutil.which("kea-dhcp4") or "/usr/sbin/kea-dhcp4"
RUN_SCRIPT = next(iter(glob.glob("/usr/lib/*/kea/hooks/libdhcp_run_script.so")), None)
REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "provisor.cli"]


def _netns_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", DHCLIENT):
        if not shutil.which(tool) and not Path(tool).exists():
            return f"{tool} not installed (Debian iproute2, isc-dhcp-client)"
    probe = f"pvprobe{uuid.uuid4().hex[:6]}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False).returncode:
        return "cannot create network namespaces here"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


REASON = _netns_usable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@dataclass
class Site:
    """Two namespaces, provisor serving in the server one, and the files of the run."""

    tmp: Path
    srv_ns: str
    cli_ns: str
    veth_s: str
    veth_c: str
    env: dict[str, str]
    token: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, *cmd: str, env: dict[str, str] | None = None) -> None:
        self.procs.append(
            subprocess.Popen(
                ["ip", "netns", "exec", self.srv_ns, *cmd],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(self.tmp / f"{name}.log").open("w"),
            )
        )

    def logs(self) -> str:
        """Every log of the run, to explain a failure."""
        return "".join(f"== {p.name}\n{p.read_text()}" for p in self.tmp.glob("*.log"))

    async def listening(self, what: str, port: int, *, udp: bool = False) -> None:
        """Wait until a socket listens on ``port`` in the server namespace (the connection a
        test would make from here reaches the host's 127.0.0.1, not the namespace's); fail
        at once if a started server exited, else after a bound that is no speed check."""
        query = ["ip", "netns", "exec", self.srv_ns, "ss", "-Hln" + ("u" if udp else "t")]
        query.append(f"sport = :{port}")

        async def bound() -> bool:
            exited = [p.args for p in self.procs if p.poll() is not None]
            assert not exited, f"{exited} exited while waiting for {what}\n{self.logs()}"
            found = await asyncio.to_thread(
                subprocess.run, query, capture_output=True, text=True, check=True
            )
            return bool(found.stdout.strip())

        await until(bound, f"{what} listening on port {port}\n{self.logs()}", within=120)

    async def lease(self, mac: str, client_conf: str) -> str:
        """Run dhclient once in the client namespace with this MAC; its lease file's text."""
        sh("ip", "netns", "exec", self.cli_ns, "ip", "link", "set", "dev", self.veth_c, "down")
        sh(
            "ip",
            "netns",
            "exec",
            self.cli_ns,
            "ip",
            "link",
            "set",
            "dev",
            self.veth_c,
            "address",
            mac,
        )
        sh("ip", "netns", "exec", self.cli_ns, "ip", "link", "set", "dev", self.veth_c, "up")
        conf = self.tmp / "dhclient.conf"
        conf.write_text(client_conf)
        leases = self.tmp / "client.leases"
        r = await asyncio.to_thread(
            subprocess.run,
            ["ip", "netns", "exec", self.cli_ns, DHCLIENT, "-1", "-v", "-cf", str(conf),
             "-lf", str(leases), "-pf", str(self.tmp / "client.pid"), "-sf", "/bin/true",
             self.veth_c],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        logs = "".join(p.read_text() for p in self.tmp.glob("*.log"))
        assert r.returncode == 0, r.stdout + r.stderr + logs
        return leases.read_text()

    async def device(self, mac: str) -> dict[str, Any]:
        """The device provisor recorded for this MAC (waits for the asynchronous hook)."""
        prov = await Provisor.open(
            load_settings(None, environ={"PROVISOR_DATA_DIR": self.env["PROVISOR_DATA_DIR"]})
        )
        try:
            found = await until(
                lambda: prov.devices.store.find_all(mac=mac),
                f"a device for {mac} after the lease (the hook reports it)\n{self.logs()}",
            )
        finally:
            await prov.close()
        return dict(found[0])


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    tag = uuid.uuid4().hex[:6]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_TEST")}
    env.update(
        PROVISOR_DATA_DIR=str(tmp_path / "data"),
        PROVISOR_GENERAL__PLUGIN_DIRS=json.dumps([str(TEST_PLUGINS)]),
        PROVISOR_PROVISIONING__TFTP_ENABLED="false",
        PROVISOR_ADVERTISED_HTTP_URL="http://10.77.0.1:18667",
    )
    token = subprocess.run(
        [*CLI, "token", "create"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    s = Site(tmp_path, f"pvs{tag}", f"pvc{tag}", f"pvs{tag}", f"pvc{tag}", env, token)
    try:
        sh("ip", "netns", "add", s.srv_ns)
        sh("ip", "netns", "add", s.cli_ns)
        sh("ip", "link", "add", s.veth_s, "type", "veth", "peer", "name", s.veth_c)
        sh("ip", "link", "set", s.veth_s, "netns", s.srv_ns)
        sh("ip", "link", "set", s.veth_c, "netns", s.cli_ns)
        sh("ip", "netns", "exec", s.srv_ns, "ip", "addr", "add", "10.77.0.1/24", "dev", s.veth_s)
        for ns, dev in ((s.srv_ns, s.veth_s), (s.cli_ns, s.veth_c)):
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
        s.start("provisor", *CLI, "serve", "--rest-port", "18666", "--http-port", "18667", env=env)
        # the REST port is bound once every phone worker serves (the hooks report to it)
        await s.listening("provisor's REST API", 18666)
        yield s
    finally:
        for proc in s.procs:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(["pkill", "-f", f"dhclient.*{s.veth_c}"], check=False)
        for ns in (s.srv_ns, s.cli_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest.mark.skipif(not Path(DHCPD).exists(), reason="dhcpd not installed (isc-dhcp-server)")
async def test_isc_lease_identifies_phone_by_option_60(site: Site) -> None:
    hook = site.tmp / "hook.sh"
    hook.write_text(
        "#!/bin/sh\n"
        f"exec {' '.join(CLI)} dhcp notify --url http://127.0.0.1:18666 --token {site.token} "
        f'--ip "$1" --mac "$2" --option "60=$3" >>{site.tmp}/hook.log 2>&1\n'
    )
    hook.chmod(0o755)
    conf = site.tmp / "dhcpd.conf"
    conf.write_text(
        "ddns-update-style none;\nauthoritative;\ndefault-lease-time 600;\n"
        "subnet 10.77.0.0 netmask 255.255.255.0 {\n  range 10.77.0.100 10.77.0.150;\n"
        f'  on commit {{\n    execute("{hook}", binary-to-ascii(10, 8, ".", leased-address), '
        'binary-to-ascii(16, 8, ":", substring(hardware, 1, 6)), '
        'pick-first-value(option vendor-class-identifier, ""));\n  }\n}\n'
    )
    (site.tmp / "dhcpd.leases").write_text("")
    site.start(
        "dhcpd", DHCPD, "-f", "-4", "-cf", str(conf), "-lf", str(site.tmp / "dhcpd.leases"),
        "-pf", str(site.tmp / "dhcpd.pid"), site.veth_s,
    )  # fmt: skip
    await site.listening("dhcpd", 67, udp=True)
    # A MAC outside the test plugin's OUI: only option 60 can name the vendor and model.
    await site.lease(
        "02:11:22:33:44:77",
        'send vendor-class-identifier "TestPhone-TP100";\nrequest subnet-mask;\n',
    )
    device = await site.device("02:11:22:33:44:77")
    assert str(device["ip"]).startswith("10.77.0.") and device["vendor"] == "TestVendor"
    assert device["model"] == "TP100" and device["plugin"] == "testphone"


@pytest.mark.skipif(
    not Path(KEA).exists() or RUN_SCRIPT is None,
    reason="kea-dhcp4 or its run_script hook not installed (kea-dhcp4-server)",
)
async def test_kea_hands_out_provisor_url_and_reports_the_lease(site: Site) -> None:
    classes = json.loads(
        subprocess.run(
            [*CLI, "dhcp", "config", "--server", "kea"],
            env=site.env, capture_output=True, text=True, check=True,
        ).stdout
    )["Dhcp4"]  # fmt: skip
    hook = site.tmp / "provisor-kea-hook.sh"
    shutil.copy(REPO / "contrib" / "provisor-kea-hook.sh", hook)
    token_file = site.tmp / "dhcp.token"
    token_file.write_text(site.token + "\n")
    (site.tmp / "provisor-kea-hook.env").write_text(
        f'PROVISOR="{" ".join(CLI)}"\nPROVISOR_URL=http://127.0.0.1:18666\n'
        f"PROVISOR_TOKEN_FILE={token_file}\nexport PYTHONPATH={REPO / 'src'}\n"
    )
    kea = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": [site.veth_s]},
            "lease-database": {"type": "memfile", "persist": False},
            "valid-lifetime": 600,
            "hooks-libraries": [
                {"library": RUN_SCRIPT, "parameters": {"name": str(hook), "sync": False}}
            ],
            "option-def": classes.get("option-def", []),
            "client-classes": classes["client-classes"],
            "subnet4": [
                {"id": 1, "subnet": "10.77.0.0/24", "pools": [{"pool": "10.77.0.100-10.77.0.150"}]}
            ],
            "loggers": [
                {
                    "name": "kea-dhcp4",
                    "output_options": [{"output": str(site.tmp / "kea-out.log")}],
                    "severity": "INFO",
                }
            ],
        }
    }
    conf = site.tmp / "kea.json"
    conf.write_text(json.dumps(kea))
    kea_env = {
        "KEA_PIDFILE_DIR": str(site.tmp),
        "KEA_LOCKFILE_DIR": str(site.tmp),
        "PATH": "/usr/bin:/bin",
    }
    site.start("kea", KEA, "-c", str(conf), env=kea_env)
    await site.listening("kea-dhcp4", 67, udp=True)
    # The TestPhone OUI: Kea puts the phone in provisor's class, which sends it option 66.
    lease = await site.lease("00:11:22:33:44:88", "request subnet-mask, tftp-server-name;\n")
    assert 'option tftp-server-name "http://10.77.0.1:18667/tp"' in lease, lease
    device = await site.device("00:11:22:33:44:88")
    assert str(device["ip"]).startswith("10.77.0.")
    # Kea's run_script passes no option 60: the vendor comes from the MAC prefix.
    assert device["vendor"] == "TestVendor" and device["plugin"] == "testphone"
