# Shared code of the test plugin, subclassing the wazo plugin API as real plugins do.

import contextlib
import os
import re
import time

try:
    from wazo_provd import plugins, synchronize, tzinform
    from wazo_provd.devices.config import RawConfigError
    from wazo_provd.devices.pgasso import BasePgAssociator, DeviceSupport
    from wazo_provd.plugins import StandardPlugin, TemplatePluginHelper
    from wazo_provd.servers.http import HTTPNoListingFileService
    from wazo_provd.servers.tftp.service import TFTPFileService
    from wazo_provd.util import format_mac, norm_mac
except ImportError:
    from provd import plugins, synchronize, tzinform
    from provd.devices.config import RawConfigError
    from provd.devices.pgasso import BasePgAssociator, DeviceSupport
    from provd.plugins import StandardPlugin, TemplatePluginHelper
    from provd.servers.http import HTTPNoListingFileService
    from provd.servers.tftp.service import TFTPFileService
    from provd.util import format_mac, norm_mac
from twisted.internet import defer

_UA = re.compile(r"^TestWazo (TW\d+) ([\d.]+) ([0-9a-fA-F:]{17})$")
_PATH = re.compile(r"^/?twz-([0-9a-f]{12})\.cfg$")


class TestWazoHTTPExtractor:
    def extract(self, request, request_type):
        ua = request.getHeader(b"User-Agent")
        if ua and b"HANG" in ua:
            time.sleep(3600)
        if ua and b"CRASH" in ua:
            os._exit(3)
        if ua:
            m = _UA.match(ua.decode("ascii"))
            if m:
                model, version, mac = m.groups()
                return defer.succeed(
                    {"vendor": "TestWazo", "model": model, "version": version, "mac": norm_mac(mac)}
                )
            return defer.succeed(None)
        return defer.succeed(_from_path(request.path.decode("ascii")))


class TestWazoTFTPExtractor:
    def extract(self, request, request_type):
        return defer.succeed(_from_path(request["packet"]["filename"].decode("ascii")))


class TestWazoDHCPExtractor:
    def extract(self, request, request_type):
        vdi = request["options"].get(60, "")
        m = re.match(r"^TestWazo (TW\d+)$", vdi)
        if m:
            return defer.succeed({"vendor": "TestWazo", "model": m.group(1)})
        return defer.succeed(None)


def _from_path(path):
    m = _PATH.match(path)
    if m:
        return {"vendor": "TestWazo", "mac": norm_mac(m.group(1))}
    return None


class TestWazoPgAssociator(BasePgAssociator):
    def __init__(self, models):
        super().__init__()
        self._models = models

    def _do_associate(self, vendor, model, version):
        if vendor != "TestWazo":
            return DeviceSupport.IMPROBABLE
        if model in self._models:
            if version == self._models[model]:
                return DeviceSupport.EXACT
            return DeviceSupport.COMPLETE
        return DeviceSupport.PROBABLE


class BaseTestWazoPlugin(StandardPlugin):
    _SENSITIVE = re.compile(r"^twz-[0-9a-f]{12}\.cfg$")

    http_dev_info_extractor = TestWazoHTTPExtractor()
    tftp_dev_info_extractor = TestWazoTFTPExtractor()
    dhcp_dev_info_extractor = TestWazoDHCPExtractor()

    def __init__(self, app, plugin_dir, gen_cfg, spec_cfg):
        super().__init__(app, plugin_dir, gen_cfg, spec_cfg)
        self._tpl_helper = TemplatePluginHelper(plugin_dir)
        self.http_service = HTTPNoListingFileService(self._tftpboot_dir)
        self.tftp_service = TFTPFileService(self._tftpboot_dir)

    def _filename(self, device):
        return f"twz-{format_mac(device['mac'], separator='')}.cfg"

    def configure_common(self, raw_config):
        tpl = self._tpl_helper.get_template("common.tpl")
        self._tpl_helper.dump(tpl, raw_config, os.path.join(self._tftpboot_dir, "twz-common.cfg"))

    def configure(self, device, raw_config):
        if "http_port" not in raw_config and "http_base_url" not in raw_config:
            raise RawConfigError("HTTP only")
        behaviour = raw_config.get("X_test_behaviour")
        if behaviour == "hang":
            time.sleep(3600)
        if behaviour == "crash":
            os._exit(4)
        tz = raw_config.get("timezone")
        if tz:
            try:
                info = tzinform.get_timezone_info(tz)
            except tzinform.TimezoneNotFoundError:
                pass
            else:
                raw_config["XX_tz_hours"] = info["utcoffset"].as_hours
                raw_config["XX_dst"] = "on" if info["dst"] else "off"
        plugins.add_xivo_phonebook_url(raw_config, "testwazo", entry_point="lookup")
        raw_config["XX_lines"] = sorted(raw_config.get("sip_lines", {}).items())
        tpl = self._tpl_helper.get_dev_template(self._filename(device), device)
        self._tpl_helper.dump(
            tpl, raw_config, os.path.join(self._tftpboot_dir, self._filename(device))
        )

    def deconfigure(self, device):
        with contextlib.suppress(OSError):
            os.remove(os.path.join(self._tftpboot_dir, self._filename(device)))

    def synchronize(self, device, raw_config):
        if device.get("model") == "TW100":
            return defer.succeed(None)  # resynchronised by its own means: no NOTIFY wanted
        return synchronize.standard_sip_synchronize(device, event="testwazo-resync")

    def get_remote_state_trigger_filename(self, device):
        if "mac" not in device:
            return None
        return self._filename(device)

    def is_sensitive_filename(self, filename):
        return bool(self._SENSITIVE.match(filename))
