"""End to end: a real ISC dhcpd and a real DHCP client in network namespaces this test makes.

The client (dhclient, with a TestPhone MAC and vendor class) gets a lease; dhcpd's ``on commit``
runs ``provisor dhcp notify`` with the address, MAC and option 60; provisor — running in the
server's namespace — identifies the phone before it fetches any file.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from provisor.service import Provisor
from provisor.settings import load_settings
from tests.conftest import TEST_PLUGINS

DHCPD = shutil.which("dhcpd") or "/usr/sbin/dhcpd"
DHCLIENT = shutil.which("dhclient") or "/usr/sbin/dhclient"


def _netns_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", DHCPD, DHCLIENT):
        if not shutil.which(tool) and not Path(tool).exists():
            return f"{tool} not installed (Debian iproute2, isc-dhcp-server, isc-dhcp-client)"
    probe = f"pvprobe{uuid.uuid4().hex[:6]}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False).returncode:
        return "cannot create network namespaces here"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


REASON = _netns_usable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


async def test_lease_identifies_phone_by_option_60(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    srv_ns, cli_ns = f"pvs{tag}", f"pvc{tag}"
    veth_s, veth_c = f"pvs{tag}", f"pvc{tag}"
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_TEST")}
    env.update(
        PROVISOR_DATA_DIR=str(data),
        PROVISOR_GENERAL__PLUGIN_DIRS=json.dumps([str(TEST_PLUGINS)]),
        PROVISOR_PROVISIONING__TFTP_ENABLED="false",
    )
    cli = [sys.executable, "-m", "provisor.cli"]
    token = subprocess.run(
        [*cli, "token", "create"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sh("ip", "netns", "add", srv_ns)
        sh("ip", "netns", "add", cli_ns)
        sh("ip", "link", "add", veth_s, "type", "veth", "peer", "name", veth_c)
        sh("ip", "link", "set", veth_s, "netns", srv_ns)
        sh("ip", "link", "set", veth_c, "netns", cli_ns)
        sh("ip", "netns", "exec", srv_ns, "ip", "addr", "add", "10.77.0.1/24", "dev", veth_s)
        for ns, dev in ((srv_ns, veth_s), (cli_ns, veth_c)):
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
        sh(
            "ip",
            "netns",
            "exec",
            cli_ns,
            "ip",
            "link",
            "set",
            "dev",
            veth_c,
            "address",
            "00:11:22:33:44:77",
        )

        procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    srv_ns,
                    *cli,
                    "serve",
                    "--rest-port",
                    "18666",
                    "--http-port",
                    "18667",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "provisor.log").open("w"),
            )
        )
        hook = tmp_path / "hook.sh"
        hook.write_text(
            "#!/bin/sh\n"
            f"exec {sys.executable} -m provisor.cli dhcp notify --url http://127.0.0.1:18666 --token {token} "
            '--ip "$1" --mac "$2" --option "60=$3" >>' + f" {tmp_path}/hook.log 2>&1\n"
        )
        hook.chmod(0o755)
        conf = tmp_path / "dhcpd.conf"
        conf.write_text(
            "ddns-update-style none;\nauthoritative;\ndefault-lease-time 600;\n"
            "subnet 10.77.0.0 netmask 255.255.255.0 {\n  range 10.77.0.100 10.77.0.150;\n"
            '  on commit {\n    execute("'
            + str(hook)
            + '", binary-to-ascii(10, 8, ".", leased-address), '
            'binary-to-ascii(16, 8, ":", substring(hardware, 1, 6)), '
            'pick-first-value(option vendor-class-identifier, ""));\n  }\n}\n'
        )
        leases = tmp_path / "dhcpd.leases"
        leases.write_text("")
        procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    srv_ns,
                    DHCPD,
                    "-f",
                    "-4",
                    "-cf",
                    str(conf),
                    "-lf",
                    str(leases),
                    "-pf",
                    str(tmp_path / "dhcpd.pid"),
                    veth_s,
                ],
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "dhcpd.log").open("w"),
            )
        )
        client_conf = tmp_path / "dhclient.conf"
        client_conf.write_text(
            'send vendor-class-identifier "TestPhone-TP100";\nrequest subnet-mask;\n'
        )
        await asyncio.sleep(2)  # provisor and dhcpd start
        r = await asyncio.to_thread(
            subprocess.run,
            [
                "ip",
                "netns",
                "exec",
                cli_ns,
                DHCLIENT,
                "-1",
                "-v",
                "-cf",
                str(client_conf),
                "-lf",
                str(tmp_path / "client.leases"),
                "-pf",
                str(tmp_path / "client.pid"),
                "-sf",
                "/bin/true",
                veth_c,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0, r.stdout + r.stderr + (tmp_path / "dhcpd.log").read_text()
        prov = await Provisor.open(load_settings(None, environ={"PROVISOR_DATA_DIR": str(data)}))
        try:
            found: list[dict[str, object]] = []
            for _ in range(100):
                found = await prov.devices.store.find_all(mac="00:11:22:33:44:77")
                if found:
                    break
                await asyncio.sleep(0.1)
        finally:
            await prov.close()
        hook_log = (tmp_path / "hook.log").read_text() if (tmp_path / "hook.log").exists() else ""
        assert found, "no device after the lease; hook log: " + hook_log
        device = found[0]
        assert str(device["ip"]).startswith("10.77.0.") and device["vendor"] == "TestVendor"
        assert device["model"] == "TP100" and device["plugin"] == "testphone"
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(["pkill", "-f", f"dhclient.*{veth_c}"], check=False)
        for ns in (srv_ns, cli_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
